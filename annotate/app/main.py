"""The app's entry script inside the installed package (`nle-annotate serve` runs this file)."""

from annotate.app.router import route

route()
