// Bundles the dashboard's third-party code into self-contained ES modules with their licences.
// Run through scripts/build-dashboard-vendor (npm ci from the committed lock file, then this).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "functions", "dashboard", "static", "vendor");
mkdirSync(out, { recursive: true });

const entries = {
  chart: 'export { Chart, registerables } from "chart.js";',
  firebase:
    'export { initializeApp } from "firebase/app";\n' +
    'export { getAuth, onIdTokenChanged, signInWithPopup, signInWithEmailAndPassword, signOut,' +
    " GoogleAuthProvider } from \"firebase/auth\";",
};

for (const [name, contents] of Object.entries(entries)) {
  const version = JSON.parse(readFileSync(join(here, "node_modules", name === "chart" ? "chart.js" : "firebase", "package.json"))).version;
  await build({
    stdin: { contents, resolveDir: here, sourcefile: `${name}-entry.js` },
    bundle: true,
    format: "esm",
    minify: true,
    legalComments: "eof",
    target: ["es2020"],
    outfile: join(out, `${name}.js`),
    banner: { js: `/* ${name === "chart" ? "Chart.js" : "Firebase JS SDK"} ${version}, bundled by scripts/build-dashboard-vendor; licence in vendor/LICENSES/ */` },
  });
}

mkdirSync(join(out, "LICENSES"), { recursive: true });
copyFileSync(join(here, "node_modules", "chart.js", "LICENSE.md"), join(out, "LICENSES", "chart.js-LICENSE.md"));
copyFileSync(join(here, "node_modules", "@kurkle", "color", "LICENSE.md"), join(out, "LICENSES", "kurkle-color-LICENSE.md"));
// The firebase package names Apache-2.0 in package.json but ships no licence file; its text is kept here.
copyFileSync(join(here, "Apache-2.0.txt"), join(out, "LICENSES", "firebase-Apache-2.0.txt"));
writeFileSync(join(out, "LICENSES", "README.md"),
  "Third-party code in this folder, bundled from npm by scripts/build-dashboard-vendor (versions pinned\n" +
  "in scripts/dashboard-vendor/package-lock.json): chart.js (MIT) with @kurkle/color (MIT) in chart.js;\n" +
  "the Firebase JS SDK app and auth modules (Apache-2.0) with their dependencies (tslib 0BSD, idb ISC)\n" +
  "in firebase.js. Each file keeps its legal comments at its end.\n");
console.log("vendor modules written to", out);
