"""Browser tests: the notebooks in JupyterLab, driven through headless Chromium."""
