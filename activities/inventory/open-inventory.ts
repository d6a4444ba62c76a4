// Opens the inventory store the configuration asks for: PostgreSQL when DATABASE_URL is set,
// embedded PGlite (same SQL) otherwise. Migrations run before the store is handed out.
import { InventoryStore } from './inventory-store.js';
import { migrate } from './migrations.js';
import { embeddedClient, postgresClient } from './sql-client.js';

/** The catalog the local stack starts with, so a first order can complete. */
export const DEMO_CATALOG: Readonly<Record<string, number>> = {
  'SKU-COFFEE-1KG': 500,
  'SKU-MUG-BLUE': 200,
  'SKU-GRINDER': 25,
  'SKU-KETTLE': 40,
  'SKU-LIMITED-ED': 1,
};

export async function openInventory(database: {
  url: string | undefined;
  embeddedDir: string;
}): Promise<InventoryStore> {
  const db = database.url ? postgresClient(database.url) : await embeddedClient(database.embeddedDir);
  await migrate(db);
  return new InventoryStore(db);
}

/** Stocks the demo catalog when the store holds no SKU yet; returns whether it did. */
export async function seedDemoCatalogIfEmpty(store: InventoryStore): Promise<boolean> {
  if ((await store.levels()).length > 0) return false;
  for (const [sku, quantity] of Object.entries(DEMO_CATALOG)) await store.restock(sku, quantity);
  return true;
}
