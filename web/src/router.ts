// Navigation between the views without reloading the page (main.ts installs
// the router; views call navigate).
let onRoute: () => void = () => {};

export function setRouter(route: () => void): void {
  onRoute = route;
}

export function navigate(path: string): void {
  if (path !== location.pathname + location.search) history.pushState(null, '', path);
  onRoute();
}

export function traceHref(id: string): string {
  return `/traces/${encodeURIComponent(id)}`;
}
