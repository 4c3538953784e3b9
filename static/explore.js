// Explore page behaviour that needs no server round trip.

// One delegated listener for every layer in the browser: sets the `layer-click` store.
document.addEventListener("click", function (event) {
  const item = event.target.closest ? event.target.closest(".cl-layer-item[data-layer]") : null;
  if (!item || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
  window.dash_clientside.set_props("layer-click", { data: { layer: item.dataset.layer, at: Date.now() } });
});

// One delegated listener for every filter tile: a click (or Enter/Space on a focused tile) sets the
// `tile-click` store, which the selection callback reads. Thousands of tiles need no callback inputs.
document.addEventListener("click", function (event) {
  const tile = event.target.closest ? event.target.closest("#filter-grid-tiles .cl-tile, #camera-grid-tiles .cl-tile") : null;
  if (!tile || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
  window.dash_clientside.set_props("tile-click", { data: { index: Number(tile.dataset.index), at: Date.now() } });
});

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
