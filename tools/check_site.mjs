// Check the built site in a real browser: `make check-site` (after `make html`).
//
// Serves docs/_build/html on 127.0.0.1 and drives headless Chromium over every page, with every
// request to another host blocked (the network is "off"), and fails on:
//   - a console error or an uncaught page error;
//   - a failed request to the local server (a missing file);
//   - math left unrendered (a .math element without a MathJax container, or raw \( or $$ text);
//   - a search for a topic that does not list its page;
//   - a doctest block without a copy button;
//   - an element wider than a phone screen, other than code and display math that scroll in their box;
//   - a previous/next link at the foot of a page whose text is clipped (desktop and phone widths);
//   - a sidebar shown with nothing in it (desktop width);
//   - a link with a #fragment (self-test and topic pages) whose target page has no such id;
//   - an API entry without a [source] link that opens its highlighted source;
//   - more code blocks wider than their box at 1280 px (topic, self-test and gallery pages) than
//     MAX_OVERFLOWING_CODE (the count of each page is printed);
//   - the self-test typeset in more than MAX_TYPESET_MS after a cold load.
// It prints the typeset time and the bytes a cold load transfers for the self-test and a topic
// page. Screenshots of a few pages, at desktop and phone widths, go to docs/_build/screens/.
//
// The browser: --chromium PATH, else $CHROMIUM, else the Chromium that playwright downloads without
// root (`make chromium`: `npx playwright-core install chromium`, into ~/.cache/ms-playwright),
// else a chromium or google-chrome on the PATH.
//
// Usage: node tools/check_site.mjs [--chromium PATH] [--only SUBSTRING] [--screens DIR] [--list-mathjax]

import { createServer } from "node:http";
import { readFileSync, readdirSync, statSync, mkdirSync, existsSync } from "node:fs";
import { join, extname, relative, sep, posix, delimiter } from "node:path";
import { chromium } from "playwright-core";

const ROOT = "docs/_build/html";
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const SCREENS = opt("--screens", "docs/_build/screens");
const only = opt("--only", "");

function findChromium() {
  const given = opt("--chromium", process.env.CHROMIUM);
  if (given) return given;
  let downloaded = "";
  try {
    downloaded = chromium.executablePath(); // playwright's own download, if `make chromium` ran
  } catch {}
  if (downloaded && existsSync(downloaded)) return downloaded;
  for (const dir of (process.env.PATH || "").split(delimiter)) {
    for (const name of ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  console.error(
    "No Chromium found. Without root: `make chromium` (runs `npx playwright-core install chromium`,\n" +
      "which downloads one into ~/.cache/ms-playwright), or point CHROMIUM at a Chromium or Chrome\n" +
      "binary you have. With root on Debian/Ubuntu: `apt-get install chromium`.",
  );
  process.exit(2);
}
const executablePath = findChromium();

// Code blocks whose content is wider than their box at 1280 px, summed over the topic, self-test
// and gallery pages: 385 of 452 before the column was widened, 271 after (2026-12-02), most of
// them lines longer than 79 characters. Lower this as the examples are wrapped (target: a few).
const MAX_OVERFLOWING_CODE = 10;
// The self-test's typeset time after a cold load (best of three): 43 s with eager typesetting,
// 2.3-3.5 s lazily on a 2-core machine at load average 3-10.
const MAX_TYPESET_MS = 3000;

// Pages that searching for each term must list (the first that exists is required).
const SEARCHES = {
  "cross-entropy": ["topics/cross-entropy.html"],
  batchnorm: ["topics/normalization.html"],
  logsumexp: ["topics/cross-entropy.html"],
  "KV cache": ["topics/attention.html", "topics/transformer.html"],
  Adam: ["topics/optimizers.html"],
  REINFORCE: ["topics/policy-gradient.html"],
};
const SCREENSHOTS = {
  landing: "index.html",
  "self-test": "self-test.html",
  topic: "topics/cross-entropy.html",
  rnn: "topics/rnn.html",
  gallery: "auto_examples/plot_training_loop.html",
  // the foot of an API page: its previous/next links carry long dotted names
  "api-foot": "api/generated/dlref.losses.cross_entropy.html",
};
const DESKTOP = { width: 1280, height: 900 };
const SELF_TEST = "self-test.html";
const WEIGHED_TOPIC = "topics/rnn.html";
// An API page whose [source] link must open the highlighted source of its function.
const SOURCE_LINK = { page: "api/generated/dlref.losses.cross_entropy.html", def: "def cross_entropy(" };
const PHONE = { width: 390, height: 844 };

// ------------------------------------------------------------------------------- static server
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml", ".woff2": "font/woff2",
  ".woff": "font/woff", ".json": "application/json", ".ico": "image/x-icon", ".txt": "text/plain",
  ".ipynb": "application/json", ".py": "text/plain", ".zip": "application/zip",
};

function serve() {
  const server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (path.endsWith("/")) path += "index.html";
    const file = join(ROOT, path);
    if (!file.startsWith(ROOT) || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function pages(dir = ROOT) {
  const skip = new Set(["_static", "_sources", "_images", "_downloads", "screens", "_modules"]);
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (!skip.has(name)) out.push(...pages(path));
    } else if (name.endsWith(".html") && !["search.html", "genindex.html"].includes(name)) {
      out.push(relative(ROOT, path).split(sep).join("/"));
    }
  }
  return out.sort();
}

// ----------------------------------------------------------------------------- in-page checks
// Loaded, and every formula typeset (speech for screen readers is computed later, in a worker).
// Formulas typeset lazily (as they come into view) are all typeset here, so that each is checked.
async function settle(page) {
  await page.waitForLoadState("load");
  await page
    .evaluate(async () => {
      if (!window.MathJax?.startup?.promise) return;
      await MathJax.startup.promise;
      await MathJax.startup.document?.lazyTypesetAll?.();
    })
    .catch(() => {});
  await page
    .waitForFunction(
      () =>
        [...document.querySelectorAll(".math")].every(
          (el) => el.querySelector("mjx-container") && !el.querySelector("mjx-lazy"),
        ),
      null,
      { timeout: 60000 },
    )
    .catch(() => {}); // reported by mathProblems
}

const mathProblems = (page) =>
  page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll(".math")) {
      if (!el.querySelector("mjx-container") || el.querySelector("mjx-lazy, mjx-merror")) {
        bad.push(el.textContent.trim().slice(0, 60));
      }
    }
    // Prose only: code (a docstring shown with literalinclude) may hold TeX as it is written.
    let text = document.querySelector("main, article, body")?.innerText ?? "";
    for (const code of document.querySelectorAll("pre")) text = text.replace(code.innerText, "");
    for (const raw of ["\\(", "\\[", "$$"]) {
      if (text.includes(raw)) bad.push(`raw ${raw} in the text`);
    }
    return bad;
  });

const tooWide = (page) =>
  page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const scrolls = (el) => {
      for (let e = el; e && e !== document.body; e = e.parentElement) {
        const o = getComputedStyle(e).overflowX;
        if ((o === "auto" || o === "scroll" || o === "hidden") && e.clientWidth <= width) return true;
      }
      return false;
    };
    const bad = [];
    for (const el of document.querySelectorAll("main *, header *, footer *")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= width + 1) continue;
      if (getComputedStyle(el).position === "fixed" || el.closest("[hidden], .d-none")) continue;
      if (scrolls(el)) continue;
      bad.push(`${el.tagName.toLowerCase()}.${[...el.classList].join(".")} right=${Math.round(r.right)}`);
    }
    if (document.documentElement.scrollWidth > width + 1) {
      bad.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
    }
    return bad.slice(0, 5);
  });

// The previous/next links sit in boxes that hide what overflows: a long name would be cut off.
const clippedLinks = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll(".prev-next-area a")]
      .filter((a) => a.scrollWidth > a.clientWidth + 1)
      .map((a) => `"${a.querySelector(".prev-next-title")?.textContent.trim()}" clipped`),
  );

// Code blocks whose content is wider than their box (the reader must scroll sideways).
const overflowingCode = (page) =>
  page.evaluate(() => {
    const pres = [...document.querySelectorAll("main div.highlight pre")];
    return { total: pres.length, over: pres.filter((p) => p.scrollWidth > p.clientWidth + 1).length };
  });

// A sidebar on screen with no link in it: room taken from the content for nothing.
const emptySidebars = (page) =>
  page.evaluate(() => {
    const visible = (el) => el && el.offsetWidth > 0 && getComputedStyle(el).display !== "none";
    const bad = [];
    const primary = document.querySelector(".bd-sidebar-primary");
    const primaryLinks = [...document.querySelectorAll(
      ".bd-sidebar-primary .sidebar-primary-items__start a, .bd-sidebar-primary .sidebar-primary-items__end a",
    )].filter(visible);
    if (visible(primary) && primaryLinks.length === 0) bad.push("primary sidebar");
    const secondary = document.querySelector(".bd-sidebar-secondary");
    if (visible(secondary) && [...secondary.querySelectorAll("a")].filter(visible).length === 0) {
      bad.push("secondary sidebar");
    }
    return bad;
  });

// The ids of a built page, read from its file (cached).
const idsOf = new Map();
function ids(path) {
  if (!idsOf.has(path)) {
    const html = existsSync(join(ROOT, path)) ? readFileSync(join(ROOT, path), "utf8") : "";
    idsOf.set(path, new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1])));
  }
  return idsOf.get(path);
}

// Every in-site link with a #fragment lands on an element with that id.
async function brokenFragments(page, path) {
  const hrefs = await page.$$eval("main a[href*='#']", (as) => as.map((a) => a.getAttribute("href")));
  const bad = [];
  for (const href of new Set(hrefs)) {
    if (/^[a-z]+:/i.test(href)) continue; // another site
    const [file, fragment] = href.split("#");
    if (!fragment) continue;
    const target = file ? posix.normalize(posix.join(posix.dirname(path), file.split("?")[0])) : path;
    if (!ids(target).has(decodeURIComponent(fragment))) bad.push(href);
  }
  return bad;
}

// ----------------------------------------------------------------------------------------- main
const server = await serve();
const base = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const failures = [];
const blocked = new Set();
const fail = (where, what) => failures.push(`${where}: ${what}`);
const mathjaxFiles = new Set(); // the MathJax files the pages ask for (--list-mathjax prints them)

async function newPage(viewport) {
  const context = await browser.newContext({ viewport });
  // The network is off: only the local server answers.
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    blocked.add(url.host);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (m) => m.type() === "error" && page.problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    const url = r.url();
    if (url.startsWith(base + "_static/mathjax/")) mathjaxFiles.add(url.slice(base.length));
  });
  page.on("response", (r) => {
    if (r.url().startsWith(base) && r.status() >= 400) page.problems.push(`${r.status()} ${r.url()}`);
  });
  return page;
}

// A cold load (a fresh context, so an empty cache): the time until MathJax has typeset what it
// typesets at start-up, and the bytes transferred (bodies and headers) once the network is idle.
async function coldLoad(path) {
  const page = await newPage(DESKTOP);
  const sizes = [];
  page.on("requestfinished", (r) => sizes.push(r.sizes().catch(() => null)));
  await page.goto(base + path);
  const typesetMs = await page.evaluate(async () => {
    for (let i = 0; i < 600 && !window.MathJax?.startup?.promise; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await MathJax.startup.promise;
    return performance.now();
  });
  await page.waitForLoadState("networkidle");
  let bytes = 0;
  for (const s of await Promise.all(sizes)) {
    if (s) bytes += s.responseBodySize + s.responseHeadersSize;
  }
  const requests = sizes.length;
  await page.context().close();
  return { typesetMs, bytes, requests };
}

const IS_CODE_PAGE = (p) => p.startsWith("topics/") || p === "self-test.html" || p.startsWith("auto_examples/");
const IS_LINK_PAGE = (p) => p.startsWith("topics/") || p === "self-test.html";
const all = pages().filter((p) => p.includes(only));

// The best of three cold loads: other work on the machine only ever adds time.
const weights = {};
for (const path of [SELF_TEST, WEIGHED_TOPIC]) {
  if (!all.includes(path)) continue;
  const loads = [await coldLoad(path), await coldLoad(path), await coldLoad(path)];
  weights[path] = { ...loads[0], typesetMs: Math.min(...loads.map((l) => l.typesetMs)) };
}
if (weights[SELF_TEST] && weights[SELF_TEST].typesetMs > MAX_TYPESET_MS) {
  fail(SELF_TEST, `typeset in ${Math.round(weights[SELF_TEST].typesetMs)} ms > ${MAX_TYPESET_MS} ms`);
}

const desktop = await newPage(DESKTOP);
let mathCount = 0;
const overflow = [];
for (const path of all) {
  desktop.problems = [];
  await desktop.goto(base + path);
  await settle(desktop);
  for (const p of desktop.problems) fail(path, p);
  if (IS_CODE_PAGE(path)) {
    const { total, over } = await overflowingCode(desktop);
    if (total) overflow.push([path, over, total]);
  }
  for (const side of await emptySidebars(desktop)) fail(path, `empty ${side} at ${DESKTOP.width}px`);
  if (IS_LINK_PAGE(path)) {
    for (const href of await brokenFragments(desktop, path)) fail(path, `link to a missing id: ${href}`);
  }
  for (const m of await mathProblems(desktop)) fail(path, `math not rendered: ${m}`);
  mathCount += await desktop.locator("mjx-container").count();
  const blocks = await desktop.locator("div.highlight-pycon").count();
  const buttons = await desktop.locator("div.highlight-pycon button.copybtn").count();
  if (buttons < blocks) fail(path, `${blocks - buttons} of ${blocks} doctest blocks lack a copy button`);
  for (const c of await clippedLinks(desktop)) fail(path, `desktop: ${c}`);

  await desktop.setViewportSize(PHONE); // the same page, laid out again at phone width
  await desktop.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  for (const w of await tooWide(desktop)) fail(path, `wider than a phone: ${w}`);
  for (const c of await clippedLinks(desktop)) fail(path, `phone: ${c}`);
  await desktop.setViewportSize(DESKTOP);
}
const phone = await newPage(PHONE);

// From the API entry to the line: its [source] link opens the module's highlighted source at the
// function's definition.
if (all.includes(SOURCE_LINK.page)) {
  await desktop.goto(base + SOURCE_LINK.page);
  const link = desktop.locator("main dt.sig a:has(span.viewcode-link)").first();
  const href = (await link.count()) ? await link.getAttribute("href") : null;
  if (!href) {
    fail(SOURCE_LINK.page, "no [source] link");
  } else {
    await desktop.goto(new URL(href, base + SOURCE_LINK.page).href);
    const fragment = decodeURIComponent(new URL(desktop.url()).hash.slice(1));
    const shown = await desktop.evaluate((id) => {
      const target = id && document.getElementById(id);
      const code = target?.closest("div.highlight") ?? document.querySelector("div.highlight");
      const text = (target ?? code)?.textContent ?? "";
      return { target: !!target, highlighted: !!code?.querySelector("span.k, span.kn"), text };
    }, fragment);
    if (!shown.target) fail(href, `no element with the id #${fragment}`);
    if (!shown.highlighted || !shown.text.includes(SOURCE_LINK.def)) {
      fail(href, `does not show the highlighted source of ${SOURCE_LINK.def}`);
    }
  }
}

for (const [term, wanted] of Object.entries(SEARCHES)) {
  const target = wanted.find((p) => existsSync(join(ROOT, p)));
  if (!target) continue; // the topic is not on the site yet
  await desktop.goto(`${base}search.html?q=${encodeURIComponent(term)}`);
  await desktop
    .waitForFunction(() => document.querySelector("#search-results p")?.textContent.trim(), null, { timeout: 20000 })
    .catch(() => {});
  const links = await desktop.$$eval("#search-results li a", (as) => as.map((a) => a.getAttribute("href")));
  if (!links.some((href) => href && href.split(/[?#]/)[0].endsWith(target))) {
    fail(`search "${term}"`, `no link to ${target} among ${links.length} results`);
  }
}

mkdirSync(SCREENS, { recursive: true });
for (const [name, path] of Object.entries(SCREENSHOTS)) {
  if (!existsSync(join(ROOT, path))) {
    fail("screenshots", `${path} does not exist`);
    continue;
  }
  for (const [label, page] of [["desktop", desktop], ["phone", phone]]) {
    await page.goto(base + path);
    await settle(page);
    if (name.endsWith("-foot")) await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.screenshot({ path: join(SCREENS, `${name}-${label}.png`), fullPage: false });
  }
}

await browser.close();
server.close();
if (overflow.length) {
  console.log(`code blocks wider than their box at ${DESKTOP.width}px (page: overflowing/blocks):`);
  for (const [path, over, total] of overflow) if (over) console.log(`  ${path}: ${over}/${total}`);
  const sum = overflow.reduce((a, [, over]) => a + over, 0);
  const blocks = overflow.reduce((a, [, , total]) => a + total, 0);
  console.log(`  in all: ${sum} of ${blocks} blocks (at most ${MAX_OVERFLOWING_CODE} allowed)`);
  if (sum > MAX_OVERFLOWING_CODE) fail("code", `${sum} code blocks wider than their box > ${MAX_OVERFLOWING_CODE}`);
}
for (const [path, w] of Object.entries(weights)) {
  console.log(`cold load of ${path}: typeset at ${Math.round(w.typesetMs)} ms (best of 3), ` +
    `${(w.bytes / 1024).toFixed(0)} KiB in ${w.requests} requests`);
}
console.log(`${all.length} pages checked at ${DESKTOP.width}px and ${PHONE.width}px, ` +
  `${mathCount} formulas rendered, ${Object.keys(SEARCHES).length} searches, screenshots in ${SCREENS}`);
if (args.includes("--list-mathjax")) console.log([...mathjaxFiles].sort().join("\n"));
if (blocked.size) console.log(`requests to other hosts, blocked: ${[...blocked].sort().join(", ")}`);
if (failures.length) {
  console.log(`\n${failures.length} problem(s):`);
  for (const f of failures) console.log(`- ${f}`);
  process.exit(1);
}
console.log("site check passed");
