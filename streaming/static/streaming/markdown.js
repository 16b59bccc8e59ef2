// A small, safe markdown renderer for stream content.
//
// Everything is HTML-escaped first; only then are a few markdown forms turned into tags
// this module writes itself (headings, lists, quotes, code, bold, italic, http(s) links).
// No markup from the stream can reach the page: attribute values come from escaped text,
// which holds no quotes or angle brackets.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const STASH = "\u0000";

export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Inline forms of already escaped text. Code spans and links are set aside first, so that
// emphasis never reaches into them.
function inline(escaped) {
  const stash = [];
  const keep = (html) => `${STASH}${stash.push(html) - 1}${STASH}`;
  let s = escaped.replace(/`([^`\n]+)`/g, (_, code) => keep(`<code>${code}</code>`));
  s = s.replace(
    /\[([^\]\n]+)\]\((https?:\/\/[^\s()]+)\)/g,
    (_, text, url) =>
      keep(`<a href="${url}" target="_blank" rel="noopener noreferrer">${emphasis(text)}</a>`),
  );
  s = emphasis(s);
  return s.replace(new RegExp(`${STASH}(\\d+)${STASH}`, "g"), (_, i) => stash[Number(i)]);
}

function emphasis(s) {
  return s
    .replace(/\*\*(?=\S)([^*\n]*?\S)\*\*/g, "<strong>$1</strong>")
    .replace(/__(?=\S)([^_\n]*?\S)__/g, "<strong>$1</strong>")
    .replace(/(^|[^*\w])\*(?=\S)([^*\n]*?\S)\*(?![*\w])/g, "$1<em>$2</em>")
    .replace(/(^|[^_\w])_(?=\S)([^_\n]*?\S)_(?![_\w])/g, "$1<em>$2</em>");
}

const FENCE = /^\s*```/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;

function startsBlock(line) {
  return [FENCE, HEADING, BULLET, NUMBERED, QUOTE, RULE].some((re) => re.test(line));
}

// Return HTML for `source`, safe to assign to innerHTML.
export function renderMarkdown(source) {
  const lines = source.replaceAll(STASH, "").replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const code = [];
      for (i += 1; i < lines.length && !FENCE.test(lines[i]); i += 1) code.push(lines[i]);
      i += 1;
      out.push(`<pre><code>${escapeHtml(code.join("\n"))}</code></pre>`);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = heading[1].length;
      out.push(`<h${level}>${inline(escapeHtml(heading[2]))}</h${level}>`);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.push("<hr>");
      i += 1;
      continue;
    }
    const list = BULLET.test(line) ? ["ul", BULLET] : NUMBERED.test(line) ? ["ol", NUMBERED] : null;
    if (list) {
      const [tag, re] = list;
      const items = [];
      for (; i < lines.length && re.test(lines[i]); i += 1) {
        items.push(`<li>${inline(escapeHtml(re.exec(lines[i])[1]))}</li>`);
      }
      out.push(`<${tag}>${items.join("")}</${tag}>`);
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      for (; i < lines.length && QUOTE.test(lines[i]); i += 1) quoted.push(QUOTE.exec(lines[i])[1]);
      out.push(`<blockquote>${renderMarkdown(quoted.join("\n"))}</blockquote>`);
      continue;
    }
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const paragraph = [];
    for (; i < lines.length && lines[i].trim() && !startsBlock(lines[i]); i += 1) {
      paragraph.push(lines[i].trim());
    }
    out.push(`<p>${inline(escapeHtml(paragraph.join("\n"))).replaceAll("\n", "<br>")}</p>`);
  }
  return out.join("\n");
}
