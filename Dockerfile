# syntax=docker/dockerfile:1

# ---- build: compile server/ and stores/ to dist/ with the full (dev) toolchain ----
FROM node:24.21.0-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY server ./server
COPY stores ./stores
RUN npm run build

# ---- runtime: production dependencies and compiled JavaScript only (no tsx, no typescript) ----
FROM node:24.21.0-slim AS runtime
ENV NODE_ENV=production \
    PORT=1080 \
    FILE_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# Create and hand the upload directory to the unprivileged user before declaring the volume:
# changes made after VOLUME are discarded, and a fresh named volume copies this ownership.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 1080
# Slim images have no curl or wget; node's own fetch probes liveness. /healthz answers whenever
# the process does; readiness (/readyz, store writability) is left to the orchestrator.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||1080)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--max-semi-space-size=2", "dist/server/main.js"]
