// Live progress of a running job: polls the API once a second and updates the page; when
// the job has ended, reloads into its report. The job id comes from data-job.
//
// The time left is a countdown, computed here from a smoothed rate:
// - Progress arrives in steps (a node reports the iterations done in its running chunks
//   with each heartbeat, and whole chunks when they finish). When the count goes up, the
//   rate of that step (iterations since the last step / seconds since it) is blended into
//   the rate (exponential smoothing, weight 0.3), and the deadline is set to now + the
//   remaining iterations at that rate. Before the first step, the rate the server saw
//   since the job started seeds it.
// - Between steps the countdown only goes down, one second per second: it never rises
//   while nothing changes. At 0:00 it holds and says "finishing…" until the next step
//   (or the end of the job) brings a new estimate, which may then be later.
(() => {
  const box = document.getElementById("progress");
  if (!box) return;
  const number = new Intl.NumberFormat("en-US");
  const rateFormat = new Intl.NumberFormat("en-US", {maximumSignificantDigits: 3});
  const el = (id) => document.getElementById(id);
  // Only on a change: the state line is a live region, read out when its text changes.
  const set = (id, text) => { const e = el(id); if (e && e.textContent !== text) e.textContent = text; };
  const clock = (seconds) => {
    const whole = Math.max(0, Math.round(seconds));
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    const ss = String(s).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  };
  const SMOOTHING = 0.3;
  let rate = null;          // iterations per second, smoothed
  let last = null;          // {done, at}: the last step seen
  let deadline = null;      // when the countdown reaches 0 (ms, performance.now())
  let total = null;
  let state = null;

  const observe = (job) => {
    const now = performance.now();
    const done = job.progress.completed_iterations;
    const totalChanged = total !== null && job.total_iterations !== total;
    total = job.total_iterations;
    state = job.state;
    if (last === null) {
      last = {done, at: now};
      if (job.eta_seconds != null && job.eta_seconds > 0 && total > done) {
        rate = (total - done) / job.eta_seconds;
        deadline = now + job.eta_seconds * 1000;
      }
      return;
    }
    if (done < last.done) {  // a chunk went back to the queue: start a new step from here
      last = {done, at: now};
      return;
    }
    if (done > last.done) {
      const seconds = (now - last.at) / 1000;
      if (seconds > 0) {
        const step = (done - last.done) / seconds;
        rate = rate === null ? step : rate + SMOOTHING * (step - rate);
      }
      last = {done, at: now};
      if (rate > 0) deadline = now + ((total - done) / rate) * 1000;
    } else if (totalChanged && rate > 0) {  // another round of a target-error job
      deadline = now + ((total - done) / rate) * 1000;
    }
  };

  const showTimeLeft = () => {
    if (state === "finishing") { set("eta", "finishing…"); return; }
    if (state === "waiting") { set("eta", "–"); return; }
    if (deadline === null) { set("eta", state === "running" ? "estimating…" : "–"); return; }
    const left = (deadline - performance.now()) / 1000;
    set("eta", left > 0.5 ? clock(left) : "finishing…");
  };

  const show = (job) => {
    const p = job.progress;
    const bar = el("bar");
    bar.max = job.total_iterations;
    bar.value = p.completed_iterations;
    bar.textContent = `${number.format(p.completed_iterations)} of ${number.format(job.total_iterations)}`;
    set("iterations", number.format(p.completed_iterations));
    set("total", number.format(job.total_iterations));
    set("chunks", `${number.format(p.chunks_completed)} done, ${number.format(p.chunks_leased)} running, ${number.format(p.chunks_pending)} waiting`);
    set("nodes-working", number.format(p.nodes_working));
    set("rate", rate ? `${rateFormat.format(rate)} iterations/s` : "–");
    set("elapsed", clock(job.elapsed_seconds));
    set("state", job.state_text);
    const stateLine = el("state");
    if (stateLine) stateLine.className = `job-state job-state-${job.state}`;
    const badge = document.querySelector("#status .badge");
    if (badge && badge.textContent !== job.status) {
      badge.textContent = job.status;
      badge.className = `badge badge-${job.status}`;
    }
    showTimeLeft();
  };

  const poll = async () => {
    try {
      const reply = await fetch("/api/v1/jobs/" + encodeURIComponent(box.dataset.job), {headers: {Accept: "application/json"}});
      if (reply.ok) {
        const job = await reply.json();
        if (["completed", "failed", "cancelled"].includes(job.status)) { location.reload(); return; }
        observe(job);
        show(job);
      }
    } catch (e) {
      // The portal restarting or the network away: try again on the next tick.
    }
    setTimeout(poll, 1000);
  };
  // The countdown moves on its own, also while an answer is slow to come.
  setInterval(showTimeLeft, 1000);
  poll();
})();
