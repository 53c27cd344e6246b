from fundline.cli import app

app()
