"""Sphinx configuration of the book site: MyST-NB renders the committed notebooks, outputs as stored.

`python -m tools.build_site` (or `make site`) copies this folder, the notebooks and the offline
assets (MathJax, the ipywidgets HTML manager) into build/site/src and runs sphinx-build there.
Nothing is fetched when a page is read: every script and font is served from _static/.
"""
project = "Flow Matching"
author = "Flow matching teaching suite"
copyright = "the authors; MIT licence"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
master_doc = "index"

# The notebooks are shown as committed: executed, outputs stored, never re-run for the site.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# MathJax 3 from npm, served from _static/mathjax (the default is a CDN).
mathjax_path = "mathjax/tex-chtml.js"
# The widgets' saved state (stored by nbclient in the notebook's metadata) is drawn by the
# ipywidgets HTML manager and anywidget's front end; tools/build_site.py writes widgets/embed.js,
# a loader served from _static/widgets (the default is a CDN).
nb_ipywidgets_js = {"widgets/embed.js": {}}
html_js_files = [("mathjax2-queue.js", {"defer": "defer"})]   # the manager speaks MathJax 2's API

html_theme = "sphinx_book_theme"
html_title = "Flow Matching"
html_static_path = ["_static"]
html_theme_options = {
    "show_navbar_depth": 2,        # the chapter's sections (17.1 ... 17.7) in the left sidebar
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_copy_source = False
