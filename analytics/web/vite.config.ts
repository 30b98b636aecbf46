import { defineConfig } from 'vite';

const here = (file: string) => decodeURIComponent(new URL(file, import.meta.url).pathname);

// Three static pages, built into dist/web and served by the analytics service.
export default defineConfig({
  root: here('.'),
  base: '/',
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: { input: { index: here('./index.html'), console: here('./console.html'), operator: here('./operator.html') } },
  },
});
