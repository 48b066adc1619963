import { chromium } from "playwright-core";
import { createServer } from "node:http"; import { readFileSync, existsSync } from "node:fs";
const srv = createServer((q,r)=>{const f="docs/_build/html"+new URL(q.url,"http://x").pathname; if(!existsSync(f)){r.writeHead(404).end();return;} r.writeHead(200,{"content-type": f.endsWith(".js")?"text/javascript":f.endsWith(".css")?"text/css":f.endsWith(".html")?"text/html":"application/octet-stream"}); r.end(readFileSync(f));});
await new Promise(res=>srv.listen(0,"127.0.0.1",res)); const base=`http://127.0.0.1:${srv.address().port}/`;
const b = await chromium.launch({executablePath:"/usr/bin/chromium", args:["--no-sandbox","--disable-gpu"]});
const p = await (await b.newContext()).newPage();
for (const path of ["index.html","topics/cross-entropy.html","topics/tensors.html"]) {
  let t=Date.now(); await p.goto(base+path, {waitUntil:"domcontentloaded"}); const t0=Date.now()-t;
  await p.waitForLoadState("load"); const t1=Date.now()-t;
  await p.evaluate(async()=>{ if (window.MathJax?.startup?.promise) await window.MathJax.startup.promise;}); const t2=Date.now()-t;
  console.log(path, t0, t1, t2);
}
await b.close(); srv.close();
