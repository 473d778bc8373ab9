// What bench.mjs writes besides its main table: the machine a run came from (for the JSON, so that
// the README can cite it) and the Markdown ratio table (--markdown) ready to paste into README.md.

import fs from 'node:fs';
import os from 'node:os';

const GiB = 1024 ** 3;

function osName() {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpu_model: cpus[0]?.model?.trim() ?? null,
    cores: cpus.length,
    mem_gib: Math.round((os.totalmem() / GiB) * 10) / 10,
    kernel: `${os.type()} ${os.release()} ${os.version()}`,
    os: osName(),
    arch: os.arch(),
    node: process.version,
  };
}

// "2.5x", or "-" when a side is missing
function times(r) {
  if (r == null) return '-';
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

function num(x) {
  if (x == null) return '-';
  if (Math.abs(x) >= 100) return String(Math.round(x));
  return String(Math.round(x * 10) / 10);
}

/**
 * | scenario | <target label>… | ratio … | with the unit in the scenario cell, then a line saying
 * where the numbers come from. targets: [{ name, label }]; summary: bench.mjs's summary rows.
 */
export function renderMarkdown({ summary, targets, base, caption }) {
  const others = targets.filter((t) => t.name !== base);
  const baseLabel = targets.find((t) => t.name === base)?.label;
  const ratioHeads = others.map((t) => (others.length > 1 ? `${t.label} / ${baseLabel}` : 'ratio'));
  const lines = [
    `| scenario | ${targets.map((t) => t.label).join(' | ')}${base ? ` | ${ratioHeads.join(' | ')}` : ''} |`,
    `| --- | ${targets.map(() => '---:').join(' | ')}${base ? ` | ${others.map(() => '---:').join(' | ')}` : ''} |`,
  ];
  for (const s of summary) {
    const cells = targets.map((t) => num(s.targets[t.name]?.thru));
    const ratios = base ? others.map((t) => times(s.ratios?.[t.name]?.thru)) : [];
    lines.push(`| ${s.scenario} (${s.unit}) | ${[...cells, ...ratios].join(' | ')} |`);
  }
  if (caption) lines.push('', caption);
  return lines.join('\n');
}
