// The glassbox trace explorer: a single page with three views, routed on the
// path (the server answers every non-API path with this page).
//   /                 chat
//   /traces/{id}      one trace: tokens, steps, curves, attribution, votes
//   /audit            list and search traces, verify the chain, export
import './style.css';

import { apiKey, getJson, setApiKey } from './api';
import { clear } from './dom';
import { navigate, setRouter } from './router';
import { auditView } from './views/audit';
import { chatView } from './views/chat';
import { traceView } from './views/trace';

const app = document.getElementById('app')!;
let teardown: (() => void) | void;

function route(): void {
  if (teardown) teardown();
  teardown = undefined;
  clear(app);
  hideTooltip();
  const path = location.pathname;
  let nav = '';
  const trace = /^\/traces\/([^/]+)\/?$/.exec(path);
  if (trace) {
    nav = 'audit';
    teardown = traceView(app, decodeURIComponent(trace[1]));
  } else if (path === '/audit' || path === '/audit/' || path === '/traces' || path === '/traces/') {
    nav = 'audit';
    teardown = auditView(app);
  } else {
    nav = 'chat';
    teardown = chatView(app);
  }
  document.querySelectorAll<HTMLAnchorElement>('[data-nav]').forEach((a) => {
    a.classList.toggle('active', a.dataset.nav === nav);
  });
}

function hideTooltip(): void {
  const tip = document.getElementById('tooltip');
  if (tip) tip.hidden = true;
}

// In-page links: no reload, the view changes.
document.addEventListener('click', (e) => {
  const a = (e.target as Element | null)?.closest?.('a[data-link]') as HTMLAnchorElement | null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', route);

// The API key: kept in this browser's storage, sent as a bearer token.
const keyInput = document.getElementById('api-key') as HTMLInputElement;
const keyForm = document.getElementById('key-form') as HTMLFormElement;
keyInput.value = apiKey();
keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey(keyInput.value.trim());
  showModel();
  route();
});

async function showModel(): Promise<void> {
  const el = document.getElementById('model-name')!;
  try {
    const models = await getJson('/v1/models');
    const m = models?.data?.[0];
    el.textContent = typeof m?.id === 'string' ? m.id : '';
    el.title = typeof m?.glassbox?.sha256 === 'string' ? `sha256 ${m.glassbox.sha256}` : '';
  } catch {
    el.textContent = '';
  }
}

setRouter(route);
showModel();
route();
