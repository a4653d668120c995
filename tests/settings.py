"""Settings for the test suite. Databases and caches are real servers on this machine."""

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_statsd_push",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "tests.client.urls"
MIDDLEWARE = ["django_statsd_push.middleware.StatsdMiddleware"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Nothing leaves the process unless a test asks for a real transport (tests/client).
STATSD_CLIENT = "capture"
