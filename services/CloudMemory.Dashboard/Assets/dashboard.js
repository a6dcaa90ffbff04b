// Live updates without a reload: an element with data-live="<relay url>" listens to the relay's
// server-sent events and, on each (coalesced), fetches this page again and swaps in the element's
// new content. No framework, no build.
(() => {
  const refreshers = new Map();
  async function refresh(el) {
    const response = await fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "dashboard-live" } });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById(el.id);
    if (!fresh) return;
    el.innerHTML = fresh.innerHTML;
    el.classList.remove("live-flash"); void el.offsetWidth; el.classList.add("live-flash");
    el.dataset.liveUpdates = String(Number(el.dataset.liveUpdates || "0") + 1);
  }
  function schedule(el) {
    if (refreshers.get(el)) { refreshers.set(el, "again"); return; }
    refreshers.set(el, "running");
    refresh(el).catch(() => {}).finally(() => {
      const again = refreshers.get(el) === "again";
      refreshers.delete(el);
      if (again) schedule(el);
    });
  }
  function follow() {
    for (const el of document.querySelectorAll("[data-live]")) {
      if (!el.id) continue;
      const source = new EventSource(el.dataset.live);
      source.onopen = () => { el.dataset.liveState = "open"; };
      source.onmessage = () => schedule(el);
      source.addEventListener("refused", () => { el.dataset.liveState = "refused"; source.close(); });
      source.onerror = () => { el.dataset.liveState = "reconnecting"; };
    }
  }
  // An event stream opened while the page is still loading can hold back the page's load event in
  // Chromium (it never completes), so the streams open once the page has loaded.
  if (document.readyState === "complete") follow(); else window.addEventListener("load", follow, { once: true });
})();
