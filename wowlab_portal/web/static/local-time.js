// Times are written in UTC on the server (<time datetime="2026-11-29T22:47:05Z">2026-11-29
// 22:47 UTC</time>); this shows each in the reader's own time zone, with the zone's name,
// and keeps the UTC time as the tooltip. Without JavaScript the UTC time stays.
(() => {
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  const localize = (root) => {
    for (const el of root.querySelectorAll("time[datetime]")) {
      if (el.dataset.localized) continue;
      const moment = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) continue;
      el.title = el.textContent;
      el.textContent = format.format(moment);
      el.dataset.localized = "1";
    }
  };
  localize(document);
  // Pages that update themselves (live progress) add new times: localize those too.
  new MutationObserver(() => localize(document)).observe(document.body, {childList: true, subtree: true});
})();
