# syntax=docker/dockerfile:1
# One image for every process of the service; the command picks the role:
#   worker  (default)  node dist/workers/main.js
#   ingress            node dist/ingress/main.js
#   sandbox            node dist/sandbox/payment-gateway/main.js   (local stacks only)
#   dlq tool           node dist/ops/dlq.js list

# The exact Node release `npm run test:node24` runs the process-level tests on (scripts/test-node24.mjs).
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# --- build: compile TypeScript and bundle the workflow code ------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install (not ci): see scripts/setup.mjs for why; it installs the locked versions.
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY domain ./domain
COPY lib ./lib
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY ingress ./ingress
COPY sandbox ./sandbox
COPY ops ./ops
RUN npm run build

# --- production dependencies only -----------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime -----------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    EMBEDDED_DATABASE_DIR=/app/data/inventory
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /app/data && chown node:node /app/data
# The official image's unprivileged user (uid 1000).
USER node
EXPOSE 8080 9464
# HEALTH_PORT: the port serving /health when it is not METRICS_PORT (the worker and the ingress serve it there; the sandbox on its own port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || process.env.METRICS_PORT || 9464) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node"]
CMD ["dist/workers/main.js"]
