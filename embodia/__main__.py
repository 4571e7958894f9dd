from embodia.cli import app

app()
