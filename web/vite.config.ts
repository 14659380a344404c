// Builds the trace explorer into dist/, which is committed and compiled into
// the glassbox binary (web/CMakeLists.txt), so `glassbox serve` needs no Node.
// File names carry no content hash: the set of embedded files stays the same
// from one build to the next, and the server sends them with no-cache.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 400,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/app.js',
        chunkFileNames: 'assets/[name].js',
        assetFileNames: 'assets/[name][extname]',
      },
    },
  },
  server: {
    // `npm run dev` proxies the API to a running server (GLASSBOX_URL, default :8080).
    proxy: {
      '/v1': process.env.GLASSBOX_URL ?? 'http://127.0.0.1:8080',
      '/health': process.env.GLASSBOX_URL ?? 'http://127.0.0.1:8080',
    },
  },
});
