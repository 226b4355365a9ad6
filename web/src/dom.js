// Tiny DOM helpers. Every piece of text from the server goes through text
// nodes (never innerHTML), so owner names and reasons cannot inject markup.

// h('div', {class: 'x', dataset: {id}, on: {click}}, child...) -> Element.
// Children may be strings, numbers, Nodes, arrays of those, or null/false
// (skipped).
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') Object.assign(el.style, value);
    else if (key === 'on') for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Replaces el's children.
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// Sets textContent only when it changed (keeps selections and avoids
// needless layout).
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}
