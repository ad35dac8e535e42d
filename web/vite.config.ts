import { defineConfig } from "vite";

// Relative asset URLs, so the built page works wherever it is served from
// (the local gateway serves it at `/`).
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
  },
});
