"""The web page's files (static/), served by the docs gateway at / and /static/."""
