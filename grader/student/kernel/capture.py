"""Setup cell: record the line data of every matplotlib figure the notebook makes.

This file's source is sent to the student's kernel before the first cell; it imports nothing of
the grader. A loss plot is then checked as data (the y values of each line), not as pixels.

A figure is snapshotted when pyplot closes it (``plt.show()`` under the inline backend closes
every figure after drawing it) and after each cell for figures still open. matplotlib is not
imported here: pyplot's figure registry is patched when the notebook imports it (an import hook),
so a notebook without plots does not pay for matplotlib. The snapshots live in
``sys.modules["_grader_capture"].FIGURES``; a notebook can tamper with them, which only changes
its own evidence: hidden labels never enter this process.
"""


def _grader_install_capture() -> None:
    import importlib.abc
    import importlib.util
    import sys
    import types

    state = types.ModuleType("_grader_capture")
    state.FIGURES = {}  # id(figure) -> snapshot
    ip = get_ipython()  # noqa: F821 - defined in every IPython kernel
    sys.modules["_grader_capture"] = state
    max_points = 10_000

    def floats(values):
        out = []
        for v in list(values)[:max_points]:
            try:
                f = float(v)
            except (TypeError, ValueError):
                return None
            out.append(f if f == f and abs(f) != float("inf") else None)
        return out

    def snapshot(figure):
        try:
            axes = []
            for ax in figure.get_axes()[:20]:
                lines = []
                for line in ax.get_lines()[:20]:
                    lines.append(
                        {
                            "label": str(line.get_label())[:200],
                            "x": floats(line.get_xdata()),
                            "y": floats(line.get_ydata()),
                        }
                    )
                axes.append(
                    {
                        "title": str(ax.get_title())[:200],
                        "xlabel": str(ax.get_xlabel())[:200],
                        "ylabel": str(ax.get_ylabel())[:200],
                        "lines": lines,
                        "images": len(ax.images),
                        "collections": len(ax.collections),
                    }
                )
            title = figure._suptitle.get_text() if getattr(figure, "_suptitle", None) else ""
            if len(state.FIGURES) < 100 or id(figure) in state.FIGURES:
                state.FIGURES[id(figure)] = {
                    "execution_count": int(ip.execution_count) - 1,  # IPython counts ahead while a cell runs
                    "suptitle": str(title)[:200],
                    "axes": axes,
                }
        except Exception:  # a figure we cannot read is no evidence, never a crash
            pass

    def patch(helpers):
        gcf = helpers.Gcf
        original_destroy = gcf.destroy.__func__
        original_destroy_all = gcf.destroy_all.__func__

        def destroy(cls, num):
            manager = cls.figs.get(num) if isinstance(num, int) else num
            if manager is not None and getattr(manager, "canvas", None) is not None:
                snapshot(manager.canvas.figure)
            return original_destroy(cls, num)

        def destroy_all(cls):
            for manager in list(cls.figs.values()):
                snapshot(manager.canvas.figure)
            return original_destroy_all(cls)

        gcf.destroy = classmethod(destroy)
        gcf.destroy_all = classmethod(destroy_all)
        state.gcf = gcf

    def post_execute():
        gcf = getattr(state, "gcf", None)
        for manager in list(gcf.figs.values()) if gcf is not None else []:
            snapshot(manager.canvas.figure)

    ip.events.register("post_execute", post_execute)

    class PatchOnImport(importlib.abc.MetaPathFinder):
        """Patches matplotlib._pylab_helpers as it is imported, then steps aside."""

        def find_spec(self, name, path, target=None):
            if name != "matplotlib._pylab_helpers":
                return None
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            loader = getattr(spec, "loader", None)
            if loader is None or not hasattr(loader, "exec_module"):
                return spec
            exec_module = loader.exec_module

            def exec_and_patch(module):
                exec_module(module)
                patch(module)

            loader.exec_module = exec_and_patch
            return spec

    if "matplotlib._pylab_helpers" in sys.modules:
        patch(sys.modules["matplotlib._pylab_helpers"])
    else:
        sys.meta_path.insert(0, PatchOnImport())


_grader_install_capture()
del _grader_install_capture
