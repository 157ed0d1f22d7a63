"""The local web app (``pipeline web``): people, photos, unknown faces, search and status over the
pipeline's database, with the same change functions as the CLI. Importing this package imports
nothing heavy; :func:`pipeline.web.app.create_app` builds the FastAPI application."""
