"""A Hugging Face Space (Gradio SDK) serving qgac_jax's restoring page with the shipped models.

The Space's folder is assembled by `bash deploy/huggingface_space/build.sh OUT` (this file, the Space's
README with its settings, and a requirements.txt that installs the package from the wheel built beside it).
"""

from qgac_jax.apps import web_page
from qgac_jax.commands.jobs import Settings

demo = web_page.build(web_page.Page(Settings()))
demo.queue(default_concurrency_limit=1)

if __name__ == "__main__":
    demo.launch(server_name="0.0.0.0", ssr_mode=False, theme=web_page.THEME)
