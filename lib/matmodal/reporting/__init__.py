"""Tables beside the papers' numbers (CSV, Markdown, LaTeX), one module per study.

:mod:`.tables` formats and writes any display table; :mod:`.costa` builds costa2025's Tables 2–5;
:mod:`.massa` puts the massa2024 models beside the costa2025 grid. Metrics themselves live in
:mod:`matmodal.metrics`; figures in :mod:`matmodal.plots`.
"""
