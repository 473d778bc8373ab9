/**
 * @module The stylesheet and the one small script, served from the UI's own path (CSP: style-src
 * 'self', scripts only with the page's nonce). Pages work without the script: it only adds copy
 * buttons, the "/" shortcut to the filter and local times in hover titles.
 */
import { createHash } from 'node:crypto'

export const STYLE = `
:root{color-scheme:light dark;--bg:#f7f8fa;--panel:#fff;--text:#1c2330;--muted:#5d6878;--line:#e2e6ec;--accent:#3558d6;--accent-bg:#eef2ff;--danger:#c62f3a;--danger-bg:#fdeced;--ok:#1d7a46;--ok-bg:#e7f6ee;--warn:#8a5a00;--warn-bg:#fff5e0;--code:#f1f3f6;--shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.08)}
@media (prefers-color-scheme:dark){:root{--bg:#0f1218;--panel:#171b23;--text:#e3e7ee;--muted:#98a2b3;--line:#2a303c;--accent:#8aa4ff;--accent-bg:#1e2640;--danger:#ff7b86;--danger-bg:#3a1a1f;--ok:#5fd394;--ok-bg:#12301f;--warn:#ffc266;--warn-bg:#35270d;--code:#10141b;--shadow:none}}
*{box-sizing:border-box}
html{font-size:15px}
body{margin:0;background:var(--bg);color:var(--text);font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;-webkit-font-smoothing:antialiased}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
:focus-visible{outline:2px solid var(--accent);outline-offset:2px;border-radius:4px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.86rem}
header.top{background:var(--panel);border-bottom:1px solid var(--line)}
header.top .in{max-width:1200px;margin:0 auto;padding:.6rem 1.25rem;display:flex;gap:1.25rem;align-items:center;flex-wrap:wrap}
.brand{font-weight:700;font-size:1.1rem;color:var(--text);display:flex;align-items:center;gap:.5rem;letter-spacing:.01em}
.brand svg{width:22px;height:22px}
nav.main{display:flex;gap:.25rem}
nav.main a{color:var(--muted);padding:.35rem .7rem;border-radius:6px;font-weight:500}
nav.main a[aria-current=page]{color:var(--text);background:var(--bg)}
nav.main a:hover{color:var(--text);text-decoration:none}
.who{margin-left:auto;display:flex;gap:.6rem;align-items:center;color:var(--muted);font-size:.92rem}
.who form{margin:0}
main{max-width:1200px;margin:0 auto;padding:1.5rem 1.25rem 3rem}
h1{font-size:1.5rem;margin:0 0 .25rem;line-height:1.25;word-break:break-all}
h2{font-size:1.1rem;margin:2rem 0 .75rem}
.sub{color:var(--muted);margin:0 0 1.25rem}
.crumbs{color:var(--muted);font-size:.9rem;margin-bottom:.5rem;word-break:break-all}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;box-shadow:var(--shadow)}
.panel.pad{padding:1rem 1.25rem}
.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.6rem 1rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.78rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600;white-space:nowrap}
tbody tr:last-child td{border-bottom:0}
tbody tr:hover{background:var(--bg)}
td.num,th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.name{word-break:break-all;font-weight:500}
td.nowrap{white-space:nowrap}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.78rem;background:var(--accent-bg);color:var(--accent);margin:0 .25rem .2rem 0;white-space:nowrap}
.badge.gray{background:var(--code);color:var(--muted)}
.badge.ok{background:var(--ok-bg);color:var(--ok)}
.badge.warn{background:var(--warn-bg);color:var(--warn)}
.toolbar{display:flex;gap:.75rem;align-items:center;flex-wrap:wrap;margin-bottom:1rem}
.toolbar .grow{flex:1}
input[type=search],input[type=text],input[type=password]{font:inherit;color:var(--text);background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:.5rem .75rem;min-width:0;width:100%}
.toolbar input[type=search]{flex:1 1 12rem;max-width:420px;width:auto}
button,.button{font:inherit;font-weight:500;border:1px solid var(--line);background:var(--panel);color:var(--text);border-radius:8px;padding:.45rem .9rem;cursor:pointer;display:inline-block;line-height:1.4}
button:hover,.button:hover{border-color:var(--muted);text-decoration:none}
button.primary,.button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
@media (prefers-color-scheme:dark){button.primary,.button.primary{color:#0f1218}}
button.danger,.button.danger{color:var(--danger);border-color:var(--danger)}
button.danger.solid{background:var(--danger);color:#fff}
button.small,.button.small{padding:.15rem .55rem;font-size:.85rem}
button.link{border:0;background:none;padding:0;color:var(--accent)}
.pager{display:flex;justify-content:space-between;align-items:center;padding:.7rem 1rem;border-top:1px solid var(--line);color:var(--muted);font-size:.9rem;gap:1rem;flex-wrap:wrap}
.pager .links{display:flex;gap:.5rem}
.empty{text-align:center;padding:3rem 1rem;color:var(--muted)}
.empty h2{color:var(--text);margin:.5rem 0}
.empty .cmds{max-width:560px;margin:1rem auto 0;text-align:left}
.empty svg{width:48px;height:48px;opacity:.6}
.notice{padding:.75rem 1rem;border-radius:8px;margin-bottom:1rem;border:1px solid}
.notice.ok{background:var(--ok-bg);border-color:var(--ok);color:var(--ok)}
.notice.warn{background:var(--warn-bg);border-color:var(--warn);color:var(--warn)}
.notice.error{background:var(--danger-bg);border-color:var(--danger);color:var(--danger)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:1rem}
.stat .label{color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em}
.stat .value{font-size:1.35rem;font-weight:600;margin-top:.15rem}
.bar{display:block;width:100%;max-width:320px;height:8px;margin-top:.4rem}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.45rem 1.25rem;margin:0}
dl.kv dt{color:var(--muted)}
dl.kv dd{margin:0;word-break:break-word;min-width:0}
.cmds{display:flex;flex-direction:column;gap:.5rem}
.cmd{display:flex;align-items:center;gap:.5rem;background:var(--code);border:1px solid var(--line);border-radius:8px;padding:.4rem .4rem .4rem .75rem}
.cmd code{flex:1;overflow-x:auto;white-space:nowrap}
.cmd .label{color:var(--muted);font-size:.8rem;min-width:4.5rem}
pre.raw{background:var(--code);border:1px solid var(--line);border-radius:8px;padding:1rem;overflow:auto;max-height:32rem;margin:.75rem 0 0}
details summary{cursor:pointer;color:var(--accent)}
.two{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1rem}
.login{max-width:380px;margin:3rem auto}
.login label{display:block;font-weight:500;margin:.9rem 0 .3rem}
.login button{width:100%;margin-top:1.25rem}
.error-page{max-width:560px;margin:4rem auto;text-align:center}
.error-page .code{font-size:3rem;font-weight:700;color:var(--muted)}
ul.history{list-style:none;margin:0;padding:0}
ul.history li{padding:.5rem 1rem;border-bottom:1px solid var(--line)}
ul.history li:last-child{border-bottom:0}
ul.history code{white-space:pre-wrap;word-break:break-word}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
footer{max-width:1200px;margin:0 auto;padding:0 1.25rem 2rem;color:var(--muted);font-size:.85rem}
@media (max-width:720px){.opt{display:none}.two{grid-template-columns:1fr}th,td{padding:.55rem .6rem}main{padding:1rem .75rem 2rem}.who{margin-left:0;width:100%}}
`

export const SCRIPT = `
document.querySelectorAll('[data-copy]').forEach(function (el) {
  var b = document.createElement('button'); b.type = 'button'; b.className = 'small'; b.textContent = 'Copy';
  b.setAttribute('aria-label', 'Copy command');
  b.addEventListener('click', function () {
    navigator.clipboard.writeText(el.getAttribute('data-copy')).then(function () { b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy' }, 1500) });
  });
  el.appendChild(b);
});
document.querySelectorAll('time[datetime]').forEach(function (t) {
  var d = new Date(t.getAttribute('datetime')); if (!isNaN(d)) t.title = d.toLocaleString();
});
document.addEventListener('keydown', function (e) {
  var f = document.querySelector('input[type=search]');
  if (e.key === '/' && f && document.activeElement !== f && !/INPUT|TEXTAREA/.test(document.activeElement.tagName)) { e.preventDefault(); f.focus(); }
});
`

/** Content hashes: the asset URLs change with their content, so they can be cached for long. */
export const STYLE_VERSION = createHash('sha256').update(STYLE).digest('hex').slice(0, 10)
export const SCRIPT_VERSION = createHash('sha256').update(SCRIPT).digest('hex').slice(0, 10)
