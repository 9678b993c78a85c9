"""Entry point of the annotation app for `streamlit run streamlit_app.py` in a checkout: routing only."""

from annotate.app.router import route

route()
