"""Panel dashboard for fpcore: a live Jacobian-spectrum explorer with an animated lilypad view.

Serve it with ``panel serve dashboard/app.py`` or the ``fpcore-dashboard`` console script. The
state (:mod:`dashboard.state`) and the pure views (:mod:`dashboard.views`) import without a server;
:mod:`dashboard.app` builds the page.
"""

__all__ = ["state", "views"]
