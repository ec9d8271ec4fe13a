/*
 * The Failure Notification React app, built as ONE file the Airflow 3 UI can load as a plugin bundle.
 *
 * The UI import()s the react_apps entry's bundle_url, then renders globalThis[<entry name>] or
 * globalThis.AirflowPlugin (a React component). It shares its own libraries on globalThis (React,
 * ReactDOM, ReactJSXRuntime, ReactRouterDOM, ChakraUI, EmotionReact): they are externals here, so the
 * app runs inside the UI's React tree, router and Chakra theme (light/dark mode included) and the
 * bundle stays small. UMD format (global name AirflowPlugin), as Airflow's react plugin template.
 */
import { resolve } from "node:path";
import { defineConfig } from "vite";

const GLOBALS: Record<string, string> = {
  react: "React",
  "react-dom": "ReactDOM",
  "react/jsx-runtime": "ReactJSXRuntime",
  "react-router-dom": "ReactRouterDOM",
  "@chakra-ui/react": "ChakraUI",
  "@emotion/react": "EmotionReact",
};

export default defineConfig({
  esbuild: { jsx: "automatic" },
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: resolve(__dirname, "../airflow_failnotify/plugins/static/ui"),
    emptyOutDir: true,
    sourcemap: false,
    minify: true,
    lib: {
      entry: resolve(__dirname, "src/main.tsx"),
      name: "AirflowPlugin",
      formats: ["umd"],
      fileName: () => "failnotify.umd.js",
    },
    rollupOptions: {
      external: Object.keys(GLOBALS),
      output: { globals: GLOBALS },
    },
  },
});
