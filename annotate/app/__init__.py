"""The Streamlit app: session and sign-in, the annotator's queue, rendering, and the pages under `pages/`."""
