"""What only the book needs: the scales of its experiments (`presets`), its figures (`plotting`),
its tables and sentences (`report`), and the runner that executes its chapters with papermill and
builds it with Jupyter Book (`runner`)."""
