// Forms with a data-confirm attribute ask before they submit. The question is read from
// the attribute as text, so a name in it (a node's, say) can never run as code. An answered
// question travels with the form (confirmed=yes); without JavaScript the server asks on a
// page of its own instead.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  let answer = form.querySelector("input[name=confirmed]");
  if (!answer) {
    answer = document.createElement("input");
    answer.type = "hidden";
    answer.name = "confirmed";
    form.append(answer);
  }
  answer.value = "yes";
});
