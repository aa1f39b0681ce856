"""The explorer widget: explorer.js drawn by the browser, and the learned views only Python can compute.

One ``Explorer`` class serves every explorer of the notebooks (the builders in ``builders.py``
configure it). It is an anywidget: its front end is the plain ES module ``explorer.js`` beside this
file, shipped once per kernel in a shared :class:`ExplorerModule` (so a notebook saves it once) and
loaded by a few lines of ``_esm``. What it syncs:

* ``spec``: the controls (each a list of discrete values), what to draw, the ring's geometry;
* ``settings``: the controls' current values (the browser sets them; ``set()`` does from Python);
* ``arrays``: the data and the start points of the particles, as int16 bytes (``views.fine``);
* ``views``: the learned views stored with the notebook, one per setting the widget offers
  (``store=True``), so a page without a kernel can show each of them: per layer, every view's
  arrays in one ``data`` buffer and a compact JSON ``index`` {key: view, arrays as {at, bytes}}.

A learned view that is not stored is asked of the kernel by a message and sent back with typed
arrays. Exact fields and fixed-step solvers are computed in the browser.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import anywidget
import ipywidgets
import traitlets

MODULE_FILE = Path(__file__).with_name("explorer.js")
MODULE_NAME = "gen_models_utilities.widgets/explorer.js"

# The explorers' own _esm: import the shared module (from the site when it serves it, else from the
# code saved with the notebook) and let it draw. A promise per code, so a page imports it once.
LOADER = """
const modules = (globalThis.__flowMatchingExplorers ||= new Map());
async function explorerModule(model) {
  const reference = model.get("module");
  const id = typeof reference === "string" ? reference.replace(/^IPY_MODEL_/, "") : reference.model_id;
  const shared = await model.widget_manager.get_model(id);
  const code = shared.get("code"), url = shared.get("url");
  if (!modules.has(code)) modules.set(code, (async () => {
    if (url && /^https?:$/.test(location.protocol)) {
      try { return await import(new URL(url, document.baseURI).href); }
      catch (error) { console.warn("explorer: falling back to the saved module", error); }
    }
    const blob = URL.createObjectURL(new Blob([code], {type: "text/javascript"}));
    try { return await import(blob); } finally { URL.revokeObjectURL(blob); }
  })());
  return modules.get(code);
}
export default {
  async render({model, el}) { return (await explorerModule(model)).default.render({model, el}); }
};
"""


class ExplorerModule(ipywidgets.Widget):
    """explorer.js, sent once per kernel and shared by its explorers (``url``: where a site serves it)."""

    name = traitlets.Unicode(MODULE_NAME).tag(sync=True)
    code = traitlets.Unicode().tag(sync=True)
    url = traitlets.Unicode("").tag(sync=True)


_SHARED: list[ExplorerModule] = []


def shared_module() -> ExplorerModule:
    """The kernel's one ExplorerModule (a new one if it was closed or the file changed)."""
    code = MODULE_FILE.read_text()
    if not _SHARED or _SHARED[0].comm is None or _SHARED[0].code != code:
        _SHARED[:] = [ExplorerModule(code=code)]
    return _SHARED[0]


@dataclass(frozen=True)
class Control:
    """One control: ``name`` (a key of settings), its ``label``, the discrete ``values`` it offers.

    ``kind`` 'slider' (a range over the values) or 'select'; ``labels``: shown instead of the values.
    """

    name: str
    label: str
    values: tuple
    kind: str = "slider"
    labels: tuple | None = None

    def as_dict(self) -> dict:
        out = {"name": self.name, "label": self.label, "values": list(self.values), "kind": self.kind}
        if self.labels is not None:
            out["labels"] = list(self.labels)
        return out

    def index(self, value) -> int:
        """The index of ``value`` among the values; ValueError naming the control otherwise."""
        for i, offered in enumerate(self.values):
            if offered == value or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                    and isinstance(offered, (int, float)) and math.isclose(offered, value)):
                return i
        raise ValueError(f"{self.label} must be one of {list(self.values)}, got {value!r}")


@dataclass
class Layer:
    """A learned layer ('paths', 'arrows', 'accurate'): the controls it depends on and how to compute it.

    ``stored``: {control name: values} to store fewer values of a control than it offers (the
    others are computed when asked). ``canonical(settings)``: a key under which equal views are
    stored once (others point to it with an alias).
    """

    keys: tuple
    compute: Callable[[dict], dict]
    stored: dict = field(default_factory=dict)
    canonical: Callable[[dict], tuple] | None = None


def pack(views: dict) -> dict:
    """{key: view} as one buffer of every view's arrays and a compact JSON index (what ``views`` saves)."""
    index, chunks, offset = {}, [], 0
    for key, view in views.items():
        entry = {}
        for name, value in view.items():
            if isinstance(value, bytes):
                entry[name], offset = {"at": offset, "bytes": len(value)}, offset + len(value)
                chunks.append(value)
            else:
                entry[name] = value
        index[key] = entry
    return {"index": json.dumps(index, separators=(",", ":")), "data": b"".join(chunks)}


def unpack(packed: dict | None, key: str) -> dict | None:
    """The view of ``key`` in a packed layer (aliases followed), arrays as bytes; None when absent."""
    if not packed:
        return None
    index = json.loads(packed["index"])
    entry = index.get(key)
    if entry is not None and "alias" in entry:
        entry = index[entry["alias"]]
    if entry is None:
        return None
    return {name: bytes(packed["data"][value["at"]:value["at"] + value["bytes"]])
            if isinstance(value, dict) and "bytes" in value else value for name, value in entry.items()}


class Explorer(anywidget.AnyWidget):
    """An explorer: controls, a canvas and a line of text, drawn by the browser (see the module docstring).

    Args:
        spec: what explorer.js draws (built by ``builders.py``); its controls come from ``controls``.
        controls: the Controls, in the order shown. settings: their starting values (checked).
        arrays: {name: bytes} the browser decodes (data, start points).
        layers: {layer name: Layer}. store: compute and keep every view the controls offer.
    """

    _esm = LOADER
    module = traitlets.Instance(ExplorerModule).tag(sync=True, **ipywidgets.widget_serialization)
    spec = traitlets.Dict().tag(sync=True)
    settings = traitlets.Dict().tag(sync=True)
    arrays = traitlets.Dict().tag(sync=True)
    views = traitlets.Dict().tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, spec: dict, controls: list[Control], settings: dict, arrays: dict,
                 layers: dict[str, Layer] | None = None, store: bool = True):
        if "google.colab" in sys.modules:        # Colab's widget manager: each explorer carries its module
            self._esm = MODULE_FILE.read_text()
        self.controls = {control.name: control for control in controls}
        self.layers = layers or {}
        checked = {name: self.controls[name].values[self.controls[name].index(value)]
                   for name, value in settings.items()}
        spec = {**spec, "controls": [control.as_dict() for control in controls],
                "layers": {name: {"keys": list(layer.keys)} for name, layer in self.layers.items()}}
        self._computed: dict[tuple, dict] = {}
        views = self._stored_views(checked) if store else {}        # sent with the widget, in one message
        super().__init__(module=shared_module(), spec=spec, settings=checked, arrays=arrays, views=views)
        self.on_msg(self._on_message)

    # ------------------------------------------------------------------ keys and views
    def key(self, layer: str, settings: dict | None = None) -> str:
        """The key of ``layer``'s view for ``settings`` (default: the current ones), as explorer.js makes it."""
        settings = self.settings if settings is None else settings
        return "|".join(f"{name}={self.controls[name].index(settings[name])}" for name in self.layers[layer].keys)

    def _settings_of(self, layer: str, key: str, settings: dict | None = None) -> dict:
        """The settings with ``layer``'s controls as ``key`` says (the others as in ``settings`` or now)."""
        settings = dict(self.settings if settings is None else settings)
        parts = [part.split("=") for part in key.split("|")]
        if [part[0] for part in parts] != list(self.layers[layer].keys) or any(len(part) != 2 for part in parts):
            raise ValueError(f"a key of the {layer!r} layer names {list(self.layers[layer].keys)}, got {key!r}")
        for name, index in parts:
            if not index.isdigit() or int(index) >= len(self.controls[name].values):
                raise ValueError(f"{name} has no value number {index!r}")
            settings[name] = self.controls[name].values[int(index)]
        return settings

    def offered_keys(self, layer: str, stored_only: bool = True) -> list[str]:
        """Every key of ``layer`` the controls offer (``stored_only``: those the layer stores)."""
        spec = self.layers[layer]
        keys = [""]
        for name in spec.keys:
            values = spec.stored.get(name, self.controls[name].values) if stored_only else self.controls[name].values
            keys = [f"{key}|{name}={self.controls[name].index(value)}".lstrip("|") for key in keys for value in values]
        return keys

    def compute(self, layer: str, settings: dict) -> dict:
        """The learned view of ``layer`` for ``settings`` (computed once per canonical key)."""
        spec = self.layers[layer]
        canonical = (layer,) + (spec.canonical(settings) if spec.canonical else tuple(settings[k] for k in spec.keys))
        if canonical not in self._computed:
            self._computed[canonical] = spec.compute(settings)
        return self._computed[canonical]

    def _stored_views(self, settings: dict) -> dict:
        views = {}
        for layer in self.layers:
            first: dict[int, str] = {}
            stored = {}
            for key in self.offered_keys(layer):
                view = self.compute(layer, self._settings_of(layer, key, settings))
                if id(view) in first:
                    stored[key] = {"alias": first[id(view)]}      # the same view under another setting
                else:
                    first[id(view)], stored[key] = key, view
            views[layer] = pack(stored)
        return views

    def stored_view(self, layer: str, key: str) -> dict | None:
        """A view as saved in ``views`` (aliases followed), or None when it is not stored."""
        return unpack(self.views.get(layer), key)

    def view(self, layer: str, settings: dict | None = None) -> dict:
        """The learned view of ``layer`` for the current settings (or ``settings``), computed if needed."""
        return self.compute(layer, {**self.settings, **(settings or {})})


    # ------------------------------------------------------------------ controls from Python
    def set(self, **values) -> None:
        """Set controls by name, as a reader would; a value a control does not offer raises ValueError."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; controls: {list(self.controls)}")
        checked = {name: self.controls[name].values[self.controls[name].index(value)] for name, value in values.items()}
        self.settings = {**self.settings, **checked}

    # ------------------------------------------------------------------ messages from the browser
    def _on_message(self, _, content: dict, buffers) -> None:
        kind = content.get("kind") if isinstance(content, dict) else None
        if kind == "hello":
            self.send({"kind": "hello"})
        elif kind == "request":
            self._answer(str(content.get("layer")), str(content.get("key")))
        elif kind == "command":
            self.command(str(content.get("name")))

    def _answer(self, layer: str, key: str) -> None:
        """Compute the view the browser asked for and send it, or say why not (never a traceback)."""
        try:
            if layer not in self.layers:
                raise ValueError(f"no learned layer {layer!r}")
            view = self.compute(layer, self._settings_of(layer, key))
        except Exception as error:                          # shown in the widget's text line
            self.send({"kind": "refused", "layer": layer, "key": key,
                       "message": f"could not compute this view: {type(error).__name__}: {error}"})
            return
        names = [name for name, value in view.items() if isinstance(value, bytes)]
        plain = {name: value for name, value in view.items() if name not in names}
        self.send({"kind": "view", "layer": layer, "key": key, "view": plain, "buffers": names},
                  [view[name] for name in names])

    def command(self, name: str) -> None:
        """A button of the front end (only the live trainer has buttons)."""

    def __repr__(self) -> str:
        return f"<{self.spec.get('name', 'an')} explorer: {self.settings}>"
