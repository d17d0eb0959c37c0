// ANSI SGR colours in task output rendered as spans; every other escape sequence (cursor
// moves, titles, charset switches) is dropped, and a line redrawn with \r keeps its last
// drawing, as a terminal would show it.
import { h } from "./dom.js";

// CSI sequences, OSC strings (ended by BEL or ST), and two-byte escapes.
const ESC = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()#][0-9A-Za-z]|\x1b[@-Z\\-_]/g;
// Other control characters (tab kept) would show as boxes.
const CTRL = /[\x00-\x08\x0b-\x1f\x7f]/g;

function rgb256(n) {
  if (n < 16) return undefined;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const c = n - 16;
  const lv = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${lv(Math.floor(c / 36))},${lv(Math.floor(c / 6) % 6)},${lv(c % 6)})`;
}

function applySgr(st, params) {
  const p = params === "" ? [0] : params.split(/[;:]/).map((x) => (x === "" ? 0 : Number(x)));
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === 0) Object.assign(st, { fg: undefined, bg: undefined, bold: false, dim: false, italic: false, underline: false, inverse: false });
    else if (c === 1) st.bold = true;
    else if (c === 2) st.dim = true;
    else if (c === 3) st.italic = true;
    else if (c === 4) st.underline = true;
    else if (c === 7) st.inverse = true;
    else if (c === 22) st.bold = st.dim = false;
    else if (c === 23) st.italic = false;
    else if (c === 24) st.underline = false;
    else if (c === 27) st.inverse = false;
    else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) st.fg = c >= 90 ? c - 90 + 8 : c - 30;
    else if ((c >= 40 && c <= 47) || (c >= 100 && c <= 107)) st.bg = c >= 100 ? c - 100 + 8 : c - 40;
    else if (c === 39) st.fg = undefined;
    else if (c === 49) st.bg = undefined;
    else if (c === 38 || c === 48) {
      const key = c === 38 ? "fg" : "bg";
      if (p[i + 1] === 5) {
        const n = p[i + 2] ?? 0;
        st[key] = n < 16 ? n : rgb256(n);
        i += 2;
      } else if (p[i + 1] === 2) {
        st[key] = `rgb(${p[i + 2] ?? 0},${p[i + 3] ?? 0},${p[i + 4] ?? 0})`;
        i += 4;
      }
    }
  }
}

function styled(text, st) {
  const plain = st.fg === undefined && st.bg === undefined && !st.bold && !st.dim && !st.italic && !st.underline && !st.inverse;
  if (plain) return text;
  const cls = [];
  const span = h("span", {}, text);
  const fg = st.inverse ? st.bg ?? "inv-fg" : st.fg;
  const bg = st.inverse ? st.fg ?? "inv-bg" : st.bg;
  // The 16 basic colours follow the page's palette (light or dark); others are exact.
  if (typeof fg === "number") cls.push(`a-fg${fg}`);
  else if (fg === "inv-fg") cls.push("a-invfg");
  else if (fg !== undefined) span.style.color = fg;
  if (typeof bg === "number") cls.push(`a-bg${bg}`);
  else if (bg === "inv-bg") cls.push("a-invbg");
  else if (bg !== undefined) span.style.backgroundColor = bg;
  if (st.bold) cls.push("a-b");
  if (st.dim) cls.push("a-d");
  if (st.italic) cls.push("a-i");
  if (st.underline) cls.push("a-u");
  span.className = cls.join(" ");
  return span;
}

/** The pieces (strings and spans) to show for one line of output. */
export function ansiLine(raw) {
  let text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
  const cr = text.lastIndexOf("\r");
  if (cr >= 0) text = text.slice(cr + 1);
  const out = [];
  const st = {};
  let at = 0;
  ESC.lastIndex = 0;
  for (let m = ESC.exec(text); m !== null; m = ESC.exec(text)) {
    if (m.index > at) out.push(styled(text.slice(at, m.index).replace(CTRL, ""), st));
    if (m[2] === "m") applySgr(st, m[1] ?? "");
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(styled(text.slice(at).replace(CTRL, ""), st));
  return out;
}

/** The line with every escape sequence removed (for copying and searching). */
export function stripAnsi(raw) {
  return raw.replace(ESC, "").replace(CTRL, "");
}
