import { defineConfig } from 'vitest/config';

// VIGIL_API: where `npm run dev` proxies /api, /ws and /healthz (a running vigild).
const api = process.env.VIGIL_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic' },
  // react-dom is most of the entry chunk; the login page and session add ~3 kB
  build: { outDir: 'dist', target: 'es2020', sourcemap: false, chunkSizeWarningLimit: 260 },
  server: {
    proxy: {
      '/api': api,
      '/healthz': api,
      '/ws': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
