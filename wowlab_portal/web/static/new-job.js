// The new-simulation form: typing or pasting a config chooses "Paste a config", picking an
// example chooses "Run an example", so the radio always says what will run. The server
// checks the choice again (and this is a convenience: the form works without it).
(() => {
  const form = document.getElementById("new-job");
  if (!form) return;
  const choose = (value) => {
    const radio = form.querySelector(`input[name=source][value=${value}]`);
    if (radio) radio.checked = true;
  };
  const config = form.querySelector("textarea[name=config]");
  const example = form.querySelector("select[name=example]");
  if (config) config.addEventListener("input", () => { if (config.value.trim()) choose("paste"); });
  if (example) example.addEventListener("change", () => { if (example.value) choose("example"); });
})();
