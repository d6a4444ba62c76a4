-- The inventory database of the order saga worker (Temporal creates its own databases).
CREATE DATABASE inventory;
