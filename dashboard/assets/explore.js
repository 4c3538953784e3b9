// Arrow keys step through filters while the detail view is open; Escape closes it.
// They press the view's own buttons, so the keyboard and the mouse share one code path.
document.addEventListener("keydown", function (event) {
  const detail = document.getElementById("filter-detail");
  if (!detail || detail.hidden) { return; }
  const buttons = { ArrowLeft: "filter-prev", ArrowRight: "filter-next", Escape: "filter-close" };
  const id = buttons[event.key];
  if (!id) { return; }
  const target = event.target;
  const editing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA"
    || (target.getAttribute && target.getAttribute("role") === "slider"));
  if (editing && event.key !== "Escape") { return; }  // the opacity slider keeps its own arrow keys
  const button = document.getElementById(id);
  if (button) { event.preventDefault(); button.click(); }
});
