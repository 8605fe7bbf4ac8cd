/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// `npm run dev` proxies the API to a running manager (CASTANET_URL, default localhost:8080).
const manager = process.env.CASTANET_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: {
      "/api": { target: manager, changeOrigin: true },
      "/job-files": { target: manager, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
