# syntax=docker/dockerfile:1
# Switchyard's container image: `docker build -t switchyard .` then
#   docker run -p 8790:8790 -e ANTHROPIC_UPSTREAM_URL=… switchyard
# serves the bundled switchyard.yaml and rules/; mount your own at /etc/switchyard and pass
# `serve --config /etc/switchyard/switchyard.yaml` (docs/deploy.md). Checked by test/deploy.test.ts.

# --- build: TypeScript, the dashboard and the native SQLite module (better-sqlite3) -----------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci runs the prepare script (scripts/build-if-stale.mjs), which builds nothing before src/ is here.
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY ui ./ui
# The image keeps the optional packages (OpenTelemetry, the AWS and Google SDKs: package.json peerDependencies) that
# a package install leaves out: a fleet image should export traces and reach every cloud without a rebuild.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
 && npm install --no-save --omit=dev --no-audit --no-fund $(node -p "Object.entries(require('./package.json').peerDependencies).map(([n, v]) => n + '@' + v).join(' ')")

# --- run: node, the built gateway and its production dependencies, as the unprivileged `node` user ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8790
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY switchyard.yaml prices.yaml ./
COPY rules ./rules
COPY schemas ./schemas
COPY secrets ./secrets
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 8790
VOLUME ["/app/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8790)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=4", "dist/cli.js"]
CMD ["serve", "--config", "switchyard.yaml"]
