// rallycall console: small enhancements over pages that work without them.
// Times in the browser's time zone, countdowns, the contacts picker's search as you type,
// inline checks of the launch form, and the live run page's updates (server-sent events).
"use strict";

(function () {
  const pad = (n) => String(n).padStart(2, "0");

  function showTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((element) => {
      const moment = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) return;
      element.textContent = element.dataset.style === "datetime"
        ? moment.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" })
        : moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      element.title = moment.toString();
    });
    document.querySelectorAll("[data-timezone]").forEach((element) => {
      element.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    });
  }

  function tickCountdowns() {
    const now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach((element) => {
      const left = Math.round((new Date(element.dataset.countdown).getTime() - now) / 1000);
      if (left <= 0) { element.textContent = "now"; return; }
      const minutes = Math.floor(left / 60);
      const hours = Math.floor(minutes / 60);
      element.textContent = "in " + (hours ? hours + ":" + pad(minutes % 60) : minutes) + ":" + pad(left % 60);
    });
  }

  function picker(fieldset) {
    const filter = fieldset.querySelector("[data-filter]");
    const options = Array.from(fieldset.querySelectorAll("[data-options] li"));
    const none = fieldset.querySelector("[data-none]");
    const chosen = fieldset.querySelector("[data-chosen]");
    const boxes = () => Array.from(fieldset.querySelectorAll("[data-options] input[type=checkbox]"));
    const fold = (text) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();

    function showChosen() {
      const names = boxes().filter((box) => box.checked).map((box) => box.dataset.name);
      chosen.textContent = names.length ? "Chosen (" + names.length + "): " + names.join(", ") : "No one chosen yet.";
    }
    function narrow() {
      const words = fold(filter.value).split(/\s+/).filter(Boolean);
      let shown = 0;
      options.forEach((item) => {
        const match = words.every((word) => fold(item.textContent).includes(word));
        item.hidden = !match;
        shown += match ? 1 : 0;
      });
      none.hidden = shown > 0 || options.length === 0;
    }
    filter.addEventListener("input", narrow);
    filter.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      const first = options.find((item) => !item.hidden);
      const box = first && first.querySelector("input[type=checkbox]");
      if (box) { box.checked = true; filter.value = ""; narrow(); showChosen(); }
    });
    fieldset.addEventListener("change", showChosen);
    showChosen();
  }

  function checkLaunchForm(form) {
    form.addEventListener("submit", (event) => {
      if (event.submitter && event.submitter.name === "edit") return;
      let firstBad = null;
      form.querySelectorAll("[data-picker]").forEach((fieldset) => {
        const message = fieldset.querySelector("[data-inline]");
        const numbers = fieldset.querySelector("[data-numbers]");
        const ticked = fieldset.querySelectorAll("[data-options] input:checked").length;
        const typed = numbers.value.split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean);
        const notNumbers = typed.filter((value) => value.startsWith("+") && !/^\+[\d\s().-]{6,}$/.test(value));
        let problem = "";
        if (fieldset.hasAttribute("data-required") && !ticked && !typed.length) {
          problem = "Choose at least one person, or type a number.";
        } else if (notNumbers.length) {
          problem = "Not a phone number: " + notNumbers.join(", ");
        }
        message.textContent = problem;
        message.hidden = !problem;
        if (problem && !firstBad) firstBad = fieldset.querySelector("[data-filter]");
      });
      if (firstBad) { event.preventDefault(); firstBad.focus(); }
    });
  }

  function live(root) {
    const connection = root.querySelector("[data-connection]");
    const notice = root.querySelector("[data-notice]");
    const source = new EventSource(root.dataset.live);
    const say = (text, state) => { connection.textContent = text; connection.className = "connection " + (state || ""); };
    source.addEventListener("open", () => say("updates live"));
    source.addEventListener("error", () => say("connection lost, reconnecting…", "lost"));
    source.addEventListener("update", (event) => {
      const data = JSON.parse(event.data);
      const focused = document.activeElement && document.activeElement.dataset
        ? document.activeElement.dataset.focusKey : undefined;
      Object.entries(data.sections).forEach(([id, html]) => {
        const section = document.getElementById(id);
        if (!section) return;
        const opened = Array.from(section.querySelectorAll("details[open][id]"), (details) => details.id);
        section.innerHTML = html;
        opened.forEach((detailsId) => { const again = document.getElementById(detailsId); if (again) again.open = true; });
        showTimes(section);
      });
      if (focused) {
        const again = root.querySelector('[data-focus-key="' + CSS.escape(focused) + '"]');
        if (again) again.focus();
      }
      notice.textContent = data.notice;
      notice.hidden = !data.notice;
      tickCountdowns();
    });
    source.addEventListener("ended", () => { source.close(); say("ended: this page no longer changes", "over"); });
  }

  document.addEventListener("DOMContentLoaded", () => {
    showTimes(document);
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
    document.querySelectorAll("[data-picker]").forEach(picker);
    document.querySelectorAll("[data-launch-form]").forEach(checkLaunchForm);
    document.querySelectorAll("[data-live]").forEach(live);
    document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));
  });
})();
