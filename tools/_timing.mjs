import { chromium } from "playwright-core";
const b = await chromium.launch({executablePath:"/usr/bin/chromium", args:["--no-sandbox","--disable-gpu"]});
const c = await b.newContext(); const p = await c.newPage();
for (const path of ["index.html","topics/cross-entropy.html","api/generated/dlref.losses.softmax.html"]) {
  let t=Date.now(); await p.goto("file:///work/main/docs/_build/html/"+path); const t1=Date.now()-t;
  await p.evaluate(async()=>{ if (window.MathJax?.startup?.promise) await window.MathJax.startup.promise;}); const t2=Date.now()-t;
  console.log(path, t1, t2);
}
await b.close();
