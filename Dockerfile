# enlil, the OCI registry: `docker build -t enlil .`, then
#   docker run -p 5000:5000 -v enlil-data:/data enlil
# Configuration through the environment (README.md, "Running it": the option table) or a file in
# REGISTRY_CONFIG. The build pulls node:24-slim: offline, see README.md, "Running with docker or
# podman on a server".

# Build stage: all dependencies, TypeScript compiled to dist/.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Final stage: dist/ and the production dependencies only.
FROM node:24-slim
ENV NODE_ENV=production \
    REGISTRY_HTTP_ADDR=:5000 \
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The filesystem store; the official node images have the unprivileged user `node` (uid 1000).
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 5000
# node itself asks /healthz (slim images have no curl); it reads the same config as the server.
# The first check runs one --interval after the start (--start-interval would check sooner, but
# only Docker 25 and later know it): 10 s, so the container turns healthy about 10 s after it starts.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "dist/main.js", "healthcheck"]
CMD ["node", "dist/main.js", "serve"]
