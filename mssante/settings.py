"""Settings of the MSSanté portal, read from the environment.

With no environment at all this is the embedded default: SQLite under var/,
tasks run in-process, e-mail printed on the console, a master key generated on
first run under var/. Production sets DATABASE_URL, CELERY_BROKER_URL and the
other variables documented in .env.example and docs/operations.md.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from mssante import envconf as conf

BASE_DIR = Path(__file__).resolve().parent.parent
if (BASE_DIR / ".env").exists() and not conf.boolean("MSSANTE_IGNORE_DOTENV", False):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(conf.string("MSSANTE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- Core -------------------------------------------------------------------
DEBUG = conf.boolean("DEBUG", False)
SECRET_KEY = conf.string("SECRET_KEY") or conf.secret_file(
    VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
)
ALLOWED_HOSTS = conf.str_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = conf.str_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = conf.url("SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
OPERATOR_NAME = conf.string("OPERATOR_NAME", "Messagerie sécurisée de santé")
# Where room is short (the admin's header, the page title); default: the name.
OPERATOR_SHORT_NAME = conf.string("OPERATOR_SHORT_NAME", "") or OPERATOR_NAME
# The operator's own logo: a file under static/ (e.g. "img/operateur.svg") or an https://
# URL; empty: the name alone. Never the Marianne nor the "République Française" block:
# they are reserved for State services, and an operator is not one.
OPERATOR_LOGO = conf.string("OPERATOR_LOGO", "")

INSTALLED_APPS = [
    "mssante.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # django-otp's plugin apps (otp_totp, otp_static, otp_email) are not installed: they
    # keep secrets in clear and show them in the admin. accounts has sealed devices.
    "django_otp",
    "axes",
    "django_htmx",
    "dsfr",
    "mssante",
    "audit",
    "accounts",
    "trust",
    "mailboxes",
    "directory",
    "charter",
    "patients",
    "clients",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mssante.middleware.SecurityHeadersMiddleware",
    "mssante.middleware.RequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionGuardMiddleware",
    "accounts.account_sessions.SessionRevocationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "mailboxes.middleware.TemporaryFailureMiddleware",
]

ROOT_URLCONF = "mssante.urls"
WSGI_APPLICATION = "mssante.wsgi.application"
ASGI_APPLICATION = "mssante.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mssante.context_processors.portal",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASES = {
    "default": conf.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'mssante.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the in-process worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = conf.integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["TEST"] = {"NAME": conf.string("DATABASE_TEST_NAME", "") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# PostgreSQL: the role the application logs in as when migrations run as another one (the
# schema owner). `migrate` then grants it what it needs, and on the audit journal only
# INSERT and SELECT (docs/deployment.md). Empty: no grants (one role, or SQLite).
DATABASE_APP_ROLE = conf.string("DATABASE_APP_ROLE", "")

# --- Identity -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.IdentifierBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

SESSION_IDLE_MINUTES = conf.integer("SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_COOKIE_AGE = conf.integer("SESSION_MAX_HOURS", 12, minimum=1) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SITE_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LOGIN_STEP_MINUTES = conf.integer("LOGIN_STEP_MINUTES", 10, minimum=1)
ACTIVATION_LINK_HOURS = conf.integer("ACTIVATION_LINK_HOURS", 72, minimum=1)
ADELI_TRANSITION_MONTHS = conf.integer("ADELI_TRANSITION_MONTHS", 12, minimum=0)
OTP_BACKUP_CODES = 10

OTP_TOTP_ISSUER = OPERATOR_NAME
OTP_EMAIL_SUBJECT = "Votre code de connexion"
OTP_EMAIL_TOKEN_VALIDITY = 600

# Passkeys (WebAuthn, accounts/passkeys.py): bound to the relying party id, by default
# SITE_URL's host; answers are accepted from SITE_URL's origin and these others.
PASSKEY_RP_ID = conf.string("PASSKEY_RP_ID", "")
PASSKEY_EXTRA_ORIGINS = conf.str_list("PASSKEY_EXTRA_ORIGINS", [])
# Staff reach the admin only from a session proved with a phishing-resistant factor: a
# passkey, or Pro Santé Connect with a CPS card (the levels below, as the PSC login
# records them under the session key "psc", accounts.psc.SESSION_KEY). On unless turned
# off (the demo does).
STAFF_REQUIRE_PHISHING_RESISTANT = conf.boolean("STAFF_REQUIRE_PHISHING_RESISTANT", True)
STAFF_PSC_STRONG_LEVELS = conf.str_list("STAFF_PSC_STRONG_LEVELS", ["cps"])

# Guessing (accounts/lockout.py, docs/decisions.md): an identifier is locked for one
# client address after LOGIN_FAILURE_LIMIT failures; across all addresses, clients the
# account does not know get LOGIN_IDENTIFIER_FREE_ATTEMPTS, then one attempt per delay
# doubling from 1 minute up to LOGIN_IDENTIFIER_MAX_DELAY_MINUTES.
AXES_FAILURE_LIMIT = conf.integer("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=conf.integer("LOGIN_LOCK_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.lockout.axes_username"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.axes_client_ip"
LOGIN_IDENTIFIER_FREE_ATTEMPTS = conf.integer("LOGIN_IDENTIFIER_FREE_ATTEMPTS", 10, minimum=1)
LOGIN_IDENTIFIER_MAX_DELAY_MINUTES = conf.integer(
    "LOGIN_IDENTIFIER_MAX_DELAY_MINUTES", 15, minimum=1
)
LOGIN_IDENTIFIER_WINDOW_HOURS = conf.integer("LOGIN_IDENTIFIER_WINDOW_HOURS", 24, minimum=1)
# A browser (device cookie) or address that completed a login stays known this long.
LOGIN_TRUSTED_DAYS = conf.integer("LOGIN_TRUSTED_DAYS", 90, minimum=1)
# At most one "your account is being guessed at" e-mail per account in this many hours.
LOGIN_ALERT_HOURS = conf.integer("LOGIN_ALERT_HOURS", 24, minimum=1)
# Proxies in front of the web process that append to X-Forwarded-For (nginx: 1). The
# client address is the one the outermost of them saw; 0 reads REMOTE_ADDR only.
TRUSTED_PROXY_HOPS = conf.integer(
    "TRUSTED_PROXY_HOPS", 1 if conf.boolean("BEHIND_TLS_PROXY", False) else 0, minimum=0
)
# A new personal address is applied when the link sent to it is followed within this time.
EMAIL_CHANGE_LINK_HOURS = conf.integer("EMAIL_CHANGE_LINK_HOURS", 24, minimum=1)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.login.lockout_response"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False

# --- Internationalisation -----------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("Français")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

# --- Static files and blobs ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = conf.boolean("STATIC_FROM_FINDERS", True)
BLOB_ROOT = Path(conf.string("BLOB_ROOT", str(VAR_DIR / "blobs")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "blobs": {
        "BACKEND": conf.string("BLOB_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {"location": str(BLOB_ROOT)} if not conf.is_set("BLOB_STORAGE") else {},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MSSANTE_MASTER_KEYS = conf.master_keys("MSSANTE_MASTER_KEYS", VAR_DIR)

# --- Tasks --------------------------------------------------------------------
_broker_url = conf.url("CELERY_BROKER_URL", "", schemes=("redis", "rediss", "amqp", "memory"))
CELERY_TASK_ALWAYS_EAGER = not _broker_url
# Celery takes a producer even for an eager task: without a broker, an in-memory transport
# keeps kombu from reaching for (and warning about) amqp://localhost.
CELERY_BROKER_URL = _broker_url or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Celery closes Django's database connections around every task unless this is set:
# a new PostgreSQL backend per task cost ≈37 ms of CPU per message (issue 13). Workers
# keep theirs for this many tasks (CONN_MAX_AGE and the health check still apply).
CELERY_DB_REUSE_MAX = conf.integer("CELERY_DB_REUSE_MAX", 1000, minimum=0)

# --- E-mail (notifications, activation links) ---------------------------------------
_EMAIL_SCHEMES = ("smtp", "smtps", "submission", "consolemail", "dummymail", "memorymail")
vars().update(
    environ.Env.email_url_config(conf.url("EMAIL_URL", "consolemail://", schemes=_EMAIL_SCHEMES))
)
DEFAULT_FROM_EMAIL = conf.string("DEFAULT_FROM_EMAIL", "ne-pas-repondre@localhost")

# --- Security headers ---------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if conf.boolean("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS everywhere once the portal is served over HTTPS (SITE_URL https://…): HTTP is
# redirected to HTTPS and browsers remember it (HSTS). The embedded demo (http://) keeps
# neither. /sante/ answers load balancers probing over plain HTTP.
_HTTPS = SITE_URL.startswith("https://")
SECURE_SSL_REDIRECT = conf.boolean("SECURE_SSL_REDIRECT", _HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^sante/$"]
SECURE_HSTS_SECONDS = conf.integer("SECURE_HSTS_SECONDS", 31_536_000 if _HTTPS else 0, minimum=0)
# Subdomains of the portal's own host only (not its siblings): safe to include.
SECURE_HSTS_INCLUDE_SUBDOMAINS = conf.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", _HTTPS)
# Preloading is a commitment browsers keep for months: the operator opts in.
SECURE_HSTS_PRELOAD = conf.boolean("SECURE_HSTS_PRELOAD", False)
# Content-Security-Policy of every page (mssante.middleware): nothing but our own files,
# no inline script or style, no framing. The attachment preview sets a stricter one.
CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "frame-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
if OPERATOR_LOGO.startswith("https://"):
    # A logo served from elsewhere: its origin (never a path or query) may give images.
    CSP["img-src"] += " " + "/".join(OPERATOR_LOGO.split("/", 3)[:3])
elif OPERATOR_LOGO.startswith(("http://", "//", "/")) or ".." in OPERATOR_LOGO:
    raise ImproperlyConfigured(
        "OPERATOR_LOGO : un fichier sous static/ (ex. img/operateur.svg) ou une URL https://."
    )
CSRF_FAILURE_VIEW = "mssante.views.csrf_failure"

# --- Logging: never message content, only ids ------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": conf.string("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# django-otp's own throttling would make a correct code fail for seconds after a
# typo; the lockout above (django-axes, counting code failures too) replaces it.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
LOGIN_URL_PATH = "/connexion/"

# HSTS preload (security.W021) is the operator's choice: SECURE_HSTS_PRELOAD.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Messaging (mailboxes) ------------------------------------------------------------
MESSAGE_MAX_BYTES = conf.integer("MESSAGE_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
MESSAGE_MAX_ATTACHMENTS = conf.integer("MESSAGE_MAX_ATTACHMENTS", 20, minimum=0)
# Networks the remote image proxy may reach although not public: for the tests'
# local HTTP server only. Deliberately not read from the environment.
REMOTE_IMAGES_ALLOWED_NETWORKS: list[str] = []
MESSAGES_PER_PAGE = 50
DELIVERY_SWEEP_SECONDS = conf.integer("DELIVERY_SWEEP_SECONDS", 60, minimum=5)
CELERY_BEAT_SCHEDULE = {
    "sweep-deliveries": {"task": "mailboxes.tasks.sweep", "schedule": DELIVERY_SWEEP_SECONDS},
}
CELERY_BEAT_SCHEDULE["purge-login-throttles"] = {
    "task": "accounts.tasks.purge_login_throttles",
    "schedule": 3600,
}
# Records of sessions ended or expired (the account page lists open ones only).
CELERY_BEAT_SCHEDULE["purge-account-sessions"] = {
    "task": "accounts.tasks.purge_account_sessions",
    "schedule": 3600,
}
# A delivery or scan not done this long after its last enqueueing is enqueued again
# by the sweeper (a lost broker message delays a message by about this much).
DELIVERY_RETRY_SECONDS = conf.integer("DELIVERY_RETRY_SECONDS", 60, minimum=5)
# Local deliveries handled per task and transaction (one journal event per message).
DELIVERY_BATCH = conf.integer("DELIVERY_BATCH", 50, minimum=1)
# With a Redis broker, stored messages wake one draining task instead of a task each; a
# wake whose task was lost blocks new wakes for at most this long (mailboxes/services/queue.py).
PIPELINE_WAKE_MS = conf.integer("PIPELINE_WAKE_MS", 1000, minimum=50)
# A woken drain first waits this long, so that the messages committed meanwhile share its
# batch (group commit on the worker's side); it is added to each message's delivery time.
PIPELINE_GATHER_MS = conf.integer("PIPELINE_GATHER_MS", 50, minimum=0)
# Blob files that no row names (a transaction that failed after its blob was written, a
# process killed mid-write, a deletion refused by the store) are deleted by a scheduled
# task once older than the grace period, which must exceed any write-to-commit delay.
BLOB_ORPHAN_GRACE_SECONDS = conf.integer("BLOB_ORPHAN_GRACE_SECONDS", 24 * 3600, minimum=600)
BLOB_ORPHAN_SCAN_SECONDS = conf.integer("BLOB_ORPHAN_SCAN_SECONDS", 6 * 3600, minimum=5)
CELERY_BEAT_SCHEDULE["collect-orphan-blobs"] = {
    "task": "mailboxes.tasks.collect_orphan_blobs",
    "schedule": BLOB_ORPHAN_SCAN_SECONDS,
}
# Drafts with nothing typed and no file, untouched for a day (mailboxes.services.drafts).
CELERY_BEAT_SCHEDULE["purge-empty-drafts"] = {
    "task": "mailboxes.tasks.purge_empty_drafts",
    "schedule": 3600,
}

# Mon agenda: a patient is reminded (content-free e-mail) of an appointment this many
# hours before it; the scheduled task looks for the appointments due every 15 minutes.
PATIENT_REMINDER_HOURS = conf.integer("PATIENT_REMINDER_HOURS", 24, minimum=1)
CELERY_BEAT_SCHEDULE["patient-appointment-reminders"] = {
    "task": "patients.tasks.send_appointment_reminders",
    "schedule": 900,
}

# --- Directory ------------------------------------------------------------------------
# A full import that would deactivate more than this share of entries stops (unless --force).
DIRECTORY_MAX_DEACTIVATION = conf.integer("DIRECTORY_MAX_DEACTIVATION_PERCENT", 10, minimum=0) / 100
DIRECTORY_PAGE_SIZE = 20
# Scheduled imports: a path or an http(s) URL of the .txt or .zip; empty: none scheduled.
DIRECTORY_MSS_SOURCE = conf.string("DIRECTORY_MSS_SOURCE", "")
DIRECTORY_PS_SOURCE = conf.string("DIRECTORY_PS_SOURCE", "")
DIRECTORY_IMPORT_HOUR = conf.integer("DIRECTORY_IMPORT_HOUR", 5, minimum=0)
if DIRECTORY_IMPORT_HOUR > 23:
    raise ImproperlyConfigured("DIRECTORY_IMPORT_HOUR : une heure entre 0 et 23.")
for _kind, _source, _minute in (("mss", DIRECTORY_MSS_SOURCE, 0), ("ps", DIRECTORY_PS_SOURCE, 30)):
    if _source:
        from celery.schedules import crontab

        CELERY_BEAT_SCHEDULE[f"directory-import-{_kind}"] = {
            "task": "directory.tasks.import_annuaire",
            "schedule": crontab(hour=DIRECTORY_IMPORT_HOUR, minute=_minute),
            "args": (_kind,),
        }
# The national directory is public; an operator may still require login for its FHIR copy.
DIRECTORY_FHIR_PUBLIC = conf.boolean("DIRECTORY_FHIR_PUBLIC", True)

# --- Charter --------------------------------------------------------------------------
# Audit journal: events older than this are purged, leaving a signed checkpoint.
AUDIT_RETENTION_DAYS = conf.integer("AUDIT_RETENTION_DAYS", 365, minimum=1)
# Each event is signed by HMAC-SHA256 under a key kept outside the database, and so are the
# seals that bind the events in order, so whoever holds only the database cannot rewrite
# them: "id:base64,…" (32-byte keys), the first
# signs, the others still verify older rows and anchors (keep them listed). Distinct from
# MSSANTE_MASTER_KEYS. Default: generated on first run in var/audit.keys.
AUDIT_KEYS = conf.master_keys("AUDIT_KEYS", VAR_DIR, filename="audit.keys")
_audit_key_ids = [part.strip().partition(":")[0] for part in AUDIT_KEYS.split(",")]
if any(not re.fullmatch(r"[A-Za-z0-9_.-]{1,16}", key_id) for key_id in _audit_key_ids):
    raise ImproperlyConfigured(
        "AUDIT_KEYS : identifiant de clé de 1 à 16 caractères [A-Za-z0-9_.-]."
    )
if len(set(_audit_key_ids)) != len(_audit_key_ids):
    raise ImproperlyConfigured("AUDIT_KEYS : deux clés portent le même identifiant.")
if {p.strip().partition(":")[2] for p in AUDIT_KEYS.split(",")} & {
    p.strip().partition(":")[2] for p in MSSANTE_MASTER_KEYS.split(",")
}:
    raise ImproperlyConfigured(
        "AUDIT_KEYS : une clé du journal ne doit pas être une clé maîtresse."
    )
# Signs purge checkpoints written before AUDIT_KEYS existed (verification only); empty =
# derived from SECRET_KEY.
AUDIT_CHECKPOINT_KEY = conf.string("AUDIT_CHECKPOINT_KEY", "")
# The newest seal is anchored outside the database: a signed line appended (O_APPEND,
# fsync) to this file every AUDIT_ANCHOR_SECONDS, every AUDIT_ANCHOR_EVERY events and after
# each purge, so that verify_audit detects removed newest rows or an emptied table. Put it
# where the database server's account cannot write. Empty = no anchoring (not recommended).
AUDIT_ANCHOR_FILE = conf.string("AUDIT_ANCHOR_FILE", str(VAR_DIR / "audit" / "anchors.jsonl"))
# Also send each anchor line to syslog: "/dev/log" or "host:port" (UDP); empty = none.
AUDIT_ANCHOR_SYSLOG = conf.string("AUDIT_ANCHOR_SYSLOG", "")
AUDIT_ANCHOR_SECONDS = conf.integer("AUDIT_ANCHOR_SECONDS", 300, minimum=10)
AUDIT_ANCHOR_EVERY = conf.integer("AUDIT_ANCHOR_EVERY", 1000, minimum=1)
# Queue of the anchoring task, for a worker on the host that holds the file (empty = default).
AUDIT_ANCHOR_QUEUE = conf.string("AUDIT_ANCHOR_QUEUE", "")
# The rows of finished transactions are sealed (audit.seals) every AUDIT_SEAL_SECONDS by
# beat, and at most that often after a commit by each process that journals.
AUDIT_SEAL_SECONDS = conf.integer("AUDIT_SEAL_SECONDS", 5, minimum=1)
# The national liste blanche: where the scheduled refresh reads it (empty = no refresh),
# and the largest share of domains (percent) an import may remove without --force.
LISTE_BLANCHE_URL = conf.string(
    "LISTE_BLANCHE_URL", "https://espacedeconfiance.mssante.fr/listeblanchemssante.xml"
)
if LISTE_BLANCHE_URL and not LISTE_BLANCHE_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("LISTE_BLANCHE_URL : l'URL doit commencer par https://.")
LISTE_BLANCHE_MAX_REMOVAL = conf.integer("LISTE_BLANCHE_MAX_REMOVAL", 10, minimum=0)
LISTE_BLANCHE_REFRESH_HOURS = conf.integer("LISTE_BLANCHE_REFRESH_HOURS", 24, minimum=1)
LISTE_BLANCHE_TIMEOUT = conf.integer("LISTE_BLANCHE_TIMEOUT", 60, minimum=1)
LISTE_BLANCHE_MAX_BYTES = conf.integer("LISTE_BLANCHE_MAX_BYTES", 64 * 1024 * 1024, minimum=1024)
# clamd: "host:port" or a Unix socket path; empty = scanning off (messages say "non analysé").
CLAMD_ADDRESS = conf.string("CLAMD_ADDRESS", "")
CLAMD_TIMEOUT = conf.integer("CLAMD_TIMEOUT", 30, minimum=1)
# Attachment policy and the recipient limit of the trust space (trust.policy).
ATTACHMENT_MAX_BYTES = conf.integer("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
BLOCKED_EXTENSIONS = [
    ext.lower().lstrip(".")
    for ext in conf.str_list(
        "BLOCKED_EXTENSIONS",
        # Windows executables and installers, scripts run by a double click, Java archives.
        [
            "exe",
            "dll",
            "bat",
            "cmd",
            "com",
            "scr",
            "pif",
            "cpl",
            "msi",
            "msp",
            "mst",
            "js",
            "jse",
            "vbs",
            "vbe",
            "wsf",
            "wsh",
            "hta",
            "ps1",
            "psm1",
            "jar",
            "lnk",
            "reg",
            "sh",
            "app",
            "apk",
            "scf",
            "inf",
            "gadget",
        ],
    )
]
MAX_RECIPIENTS = conf.integer("MAX_RECIPIENTS", 40, minimum=1)
CELERY_BEAT_SCHEDULE["purge-audit-journal"] = {
    "task": "audit.tasks.purge_journal",
    "schedule": 24 * 3600,
}
CELERY_BEAT_SCHEDULE["seal-audit-journal"] = {
    "task": "audit.tasks.seal_journal",
    "schedule": AUDIT_SEAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["anchor-audit-journal"] = {
    "task": "audit.tasks.anchor_journal",
    "schedule": AUDIT_ANCHOR_SECONDS,
}
if AUDIT_ANCHOR_QUEUE:
    CELERY_TASK_ROUTES = {"audit.tasks.anchor_journal": {"queue": AUDIT_ANCHOR_QUEUE}}
CELERY_BEAT_SCHEDULE["refresh-liste-blanche"] = {
    "task": "trust.tasks.refresh_liste_blanche",
    "schedule": LISTE_BLANCHE_REFRESH_HOURS * 3600,
}
# A scan that finds clamd unreachable is retried after this many seconds (the sweeper
# also picks up scans still pending after DELIVERY_RETRY_SECONDS).
SCAN_RETRY_SECONDS = conf.integer("SCAN_RETRY_SECONDS", 60, minimum=1)
SCAN_RETRY_MAX = conf.integer("SCAN_RETRY_MAX", 3, minimum=0)
# Sender of the platform's notices (quarantine…); empty = ne-pas-repondre@<the box's domain>.
CHARTER_NOTICE_FROM = conf.string("CHARTER_NOTICE_FROM", "")
# Inactive mailboxes (CNIL deliberation 2014-239): holders with no login for
# INACTIVE_WARN_DAYS are warned by e-mail; at INACTIVE_CLOSE_DAYS the box is closed.
INACTIVE_WARN_DAYS = conf.integer("INACTIVE_WARN_DAYS", 335, minimum=1)
INACTIVE_CLOSE_DAYS = conf.integer("INACTIVE_CLOSE_DAYS", 365, minimum=2)
if INACTIVE_CLOSE_DAYS <= INACTIVE_WARN_DAYS:
    raise ImproperlyConfigured(
        "INACTIVE_CLOSE_DAYS : doit être plus grand que INACTIVE_WARN_DAYS (avertir avant de fermer)."
    )
INACTIVE_CHECK_HOUR = conf.integer("INACTIVE_CHECK_HOUR", 3, minimum=0)
if INACTIVE_CHECK_HOUR > 23:
    raise ImproperlyConfigured("INACTIVE_CHECK_HOUR : une heure entre 0 et 23.")
from celery.schedules import crontab  # noqa: E402 - next to the only schedule that needs it

CELERY_BEAT_SCHEDULE["inactive-mailboxes"] = {
    "task": "charter.tasks.check_inactive_mailboxes",
    "schedule": crontab(hour=INACTIVE_CHECK_HOUR, minute=15),
}

# --- Patients -------------------------------------------------------------------------
# Patient mailboxes are <INS matricule>@PATIENT_DOMAIN (a hosted domain of kind "patient").
PATIENT_DOMAIN = conf.string("PATIENT_DOMAIN", "patient.mssante.fr").strip().lower()
# True: a professional's first message to a valid INS with no space creates it, awaiting
# activation. False: such a message is refused, staff provision patients first.
PATIENT_AUTO_CREATE = conf.boolean("PATIENT_AUTO_CREATE", False)
# At most one "a message is waiting" e-mail per patient in this many minutes.
PATIENT_NOTIFY_MINUTES = conf.integer("PATIENT_NOTIFY_MINUTES", 60, minimum=1)
# Family (issue 17): each night, a child who turned 18 leaves their guardians' care and
# gets their own activation link.
# A space its patient closed is erased after this many days (Mon Espace Santé keeps a
# closed profile three months); until then it is sealed and unreachable (docs/decisions.md).
PATIENT_CLOSED_RETENTION_DAYS = conf.integer("PATIENT_CLOSED_RETENTION_DAYS", 90, minimum=1)
CELERY_BEAT_SCHEDULE["patient-closed-erasure"] = {
    "task": "patients.tasks.erase_closed_spaces",
    "schedule": crontab(hour=2, minute=45),
}
CELERY_BEAT_SCHEDULE["family-majority"] = {
    "task": "patients.tasks.end_family_links_at_majority",
    "schedule": crontab(hour=2, minute=30),
}
# E-mailed login codes: a typo must not block the right code (django-axes locks instead).
OTP_EMAIL_THROTTLE_FACTOR = 0
OTP_EMAIL_COOLDOWN_DURATION = 30
OTP_EMAIL_BODY_TEMPLATE_PATH = "patients/emails/login_code.txt"

# --- SMTP between operators ---------------------------------------------------------------
# The inbound gateway (``manage.py smtpd``, a process of its own) listens here. STARTTLS
# and a client certificate signed by a CA of SMTP_CA_FILE are required, and the
# certificate's subject DN must be listed in the liste blanche for the sender's domain.
SMTP_LISTEN = conf.host_port("SMTP_LISTEN", "127.0.0.1:2525")
# Our name in EHLO and in delivery reports (the CN of our certificate in production).
SMTP_HOSTNAME = conf.string("SMTP_HOSTNAME", "") or "localhost"
# Our certificate and key (PEM): served by the gateway, presented as client certificate
# when delivering to other operators. SMTP_CA_FILE: the CAs trusted for peers (IGC Santé).
SMTP_TLS_CERT = conf.existing_file("SMTP_TLS_CERT")
SMTP_TLS_KEY = conf.existing_file("SMTP_TLS_KEY")
SMTP_CA_FILE = conf.existing_file("SMTP_CA_FILE")
if bool(SMTP_TLS_CERT) != bool(SMTP_TLS_KEY):
    raise ImproperlyConfigured("SMTP_TLS_CERT et SMTP_TLS_KEY : indiquez les deux ou aucun.")
# "domain=host:port,…": where to deliver these domains instead of their MX (relays, tests).
SMTP_ROUTES = conf.routes("SMTP_ROUTES")
# Port of the servers found by MX lookup.
SMTP_MX_PORT = conf.integer("SMTP_MX_PORT", 25, minimum=1)
# Product reference written in X-MSS-NIL on every message leaving for another operator.
MSS_NIL = conf.string("MSS_NIL", "mssante-portal/0.1.0")
# Largest message accepted from a peer (552 above); the same limit as local submission.
SMTP_MAX_MESSAGE_BYTES = conf.integer("SMTP_MAX_MESSAGE_BYTES", MESSAGE_MAX_BYTES, minimum=1024)
# The gateway stores the messages of concurrent sessions together, one commit per group
# (docs/decisions.md, "Inbound SMTP group commit"): at most SMTP_GROUP_COMMIT_MAX messages,
# waiting at most SMTP_GROUP_COMMIT_WAIT_MS for more once one is ready.
SMTP_GROUP_COMMIT_MAX = conf.integer("SMTP_GROUP_COMMIT_MAX", 50, minimum=1)
SMTP_GROUP_COMMIT_WAIT_MS = conf.integer("SMTP_GROUP_COMMIT_WAIT_MS", 2, minimum=0)
# Seconds a gateway process keeps what it read of the liste blanche and of the hosted
# domains: a change there applies to a running gateway within this time (0: read each time).
SMTP_CACHE_SECONDS = conf.integer("SMTP_CACHE_SECONDS", 60, minimum=0)
# Processes of `manage.py smtpd` sharing its listening socket (one per core in production).
SMTP_PROCESSES = conf.integer("SMTP_PROCESSES", 1, minimum=1)
# Outbound retries: first wait, doubling up to the longest wait, bounce (DSN) after the age.
SMTP_RETRY_FIRST_SECONDS = conf.integer("SMTP_RETRY_FIRST_SECONDS", 60, minimum=1)
SMTP_RETRY_MAX_SECONDS = conf.integer("SMTP_RETRY_MAX_SECONDS", 4 * 3600, minimum=1)
SMTP_GIVE_UP_HOURS = conf.integer("SMTP_GIVE_UP_HOURS", 5 * 24, minimum=1)
# Seconds before a silent peer is given up on (connection and each command).
SMTP_TIMEOUT = conf.integer("SMTP_TIMEOUT", 60, minimum=1)

# --- Practice software and mail clients (SMTP submission, IMAP, autoconfig) -------------
# `manage.py submission`: STARTTLS on SUBMISSION_LISTEN (587 in production) and implicit
# TLS on SUBMISSION_TLS_LISTEN (465; empty: not served). AUTH after TLS only.
SUBMISSION_LISTEN = conf.host_port("SUBMISSION_LISTEN", "127.0.0.1:5587")
SUBMISSION_TLS_LISTEN = conf.string("SUBMISSION_TLS_LISTEN", "127.0.0.1:5465")
# `manage.py imap`: STARTTLS on IMAP_LISTEN (143 in production) and implicit TLS on
# IMAP_TLS_LISTEN (993; empty: not served). LOGIN/AUTHENTICATE after TLS only.
IMAP_LISTEN = conf.host_port("IMAP_LISTEN", "127.0.0.1:5143")
IMAP_TLS_LISTEN = conf.string("IMAP_TLS_LISTEN", "127.0.0.1:5993")
# The certificate clients see (a public CA's in production: clients check the name).
# Empty: the gateway's SMTP_TLS_CERT / SMTP_TLS_KEY.
CLIENTS_TLS_CERT = conf.string("CLIENTS_TLS_CERT", "")
CLIENTS_TLS_KEY = conf.string("CLIENTS_TLS_KEY", "")
# What autoconfig tells clients: the public name and ports of the servers.
CLIENTS_PUBLIC_HOST = conf.string("CLIENTS_PUBLIC_HOST", "") or SMTP_HOSTNAME
IMAP_PUBLIC_PORT = conf.integer("IMAP_PUBLIC_PORT", 143, minimum=1)
SUBMISSION_PUBLIC_PORT = conf.integer("SUBMISSION_PUBLIC_PORT", 587, minimum=1)
SUBMISSION_TLS_PUBLIC_PORT = conf.integer("SUBMISSION_TLS_PUBLIC_PORT", 465, minimum=1)
# Validity of an application password (shown to its holder, who may revoke it earlier).
APP_PASSWORD_DAYS = conf.integer("APP_PASSWORD_DAYS", 365, minimum=1)

# --- Shared mailboxes and API ---------------------------------------------------------
# REST API for software (/api/v1/): requests allowed per token in each fixed window.
API_RATE_LIMIT = conf.integer("API_RATE_LIMIT", 600, minimum=1)
API_RATE_WINDOW_SECONDS = conf.integer("API_RATE_WINDOW_SECONDS", 60, minimum=1)
# Largest request body the API reads (JSON carries attachments in base64: 4/3 of the message).
API_MAX_REQUEST_BYTES = conf.integer(
    "API_MAX_REQUEST_BYTES", MESSAGE_MAX_BYTES * 4 // 3 + 256 * 1024, minimum=1024
)
# Validity of a token created without an explicit expiry (create_api_token, admin).
# Messages in one ``POST /api/v1/messages/batch`` (committed together: group commit).
API_BATCH_MAX = conf.integer("API_BATCH_MAX", 100, minimum=1)
API_TOKEN_DAYS = conf.integer("API_TOKEN_DAYS", 365, minimum=1)
# How long a POST's Idempotency-Key is remembered (its first answer replayed to retries).
API_IDEMPOTENCY_HOURS = conf.integer("API_IDEMPOTENCY_HOURS", 48, minimum=1)
# Largest page of GET /api/v1/mailboxes/{address}/messages.
API_PAGE_MAX = conf.integer("API_PAGE_MAX", 200, minimum=1)
# Swagger UI's files are served from the django-ninja package, never from a CDN.
INSTALLED_APPS += ["ninja"]
CELERY_BEAT_SCHEDULE["purge-idempotency-keys"] = {
    "task": "mailboxes.tasks.purge_idempotency_keys",
    "schedule": 3600,
}

# --- Pro Santé Connect (issue 16) -------------------------------------------------------
# Sign-in of professionals through the State's OpenID provider (CPS card or e-CPS), code
# flow with PKCE (accounts/psc.py). Off unless the operator registered a client with the
# ANS (docs/deployment.md). The secret comes from PSC_CLIENT_SECRET or, better, the file
# PSC_CLIENT_SECRET_FILE names. Production issuer by default; the sandbox ("bac à sable")
# the LemonLDAP::NG PSC page gives is https://auth.bas.esw.esante.gouv.fr/auth/realms/esante-wallet.
PSC_ENABLED = conf.boolean("PSC_ENABLED", False)
PSC_ISSUER = conf.url(
    "PSC_ISSUER",
    "https://auth.esante.gouv.fr/auth/realms/esante-wallet",
    schemes=("https", "http"),
).rstrip("/")
PSC_CLIENT_ID = conf.string("PSC_CLIENT_ID", "")
PSC_CLIENT_SECRET = conf.string("PSC_CLIENT_SECRET", "")
PSC_SCOPES = conf.string("PSC_SCOPES", "openid scope_all")
PSC_ACR_VALUES = conf.string("PSC_ACR_VALUES", "eidas1")
# The level of a sign-in, read from the amr PSC reports (RFC 8176 values): a CPS card, the
# e-CPS application, or neither (unknown). Only the levels listed in PSC_STRONG_LEVELS
# stand for both factors; any other level is asked the one-time code as well.
PSC_CARD_AMR = conf.str_list("PSC_CARD_AMR", ["sc", "hwk"])
PSC_ECPS_AMR = conf.str_list("PSC_ECPS_AMR", ["swk", "mca"])
PSC_STRONG_LEVELS = conf.str_list("PSC_STRONG_LEVELS", ["cps", "ecps"])
PSC_TIMEOUT_SECONDS = conf.integer("PSC_TIMEOUT_SECONDS", 10, minimum=1)
# "Qu'est-ce que Pro Santé Connect ?" under the button: the ANS's page for professionals.
PSC_ABOUT_URL = conf.url(
    "PSC_ABOUT_URL",
    "https://esante.gouv.fr/produits-services/pro-sante-connect",
    schemes=("https",),
)
if PSC_ENABLED:
    if not (PSC_CLIENT_ID and PSC_CLIENT_SECRET):
        raise ImproperlyConfigured(
            "PSC_ENABLED : PSC_CLIENT_ID et PSC_CLIENT_SECRET (ou PSC_CLIENT_SECRET_FILE) sont requis."
        )
    if PSC_ISSUER.startswith("http://") and not PSC_ISSUER.startswith(
        ("http://127.0.0.1:", "http://localhost:")
    ):
        raise ImproperlyConfigured("PSC_ISSUER : https:// est requis (http:// en local seulement).")
    # Logging out posts a form whose answer sends the browser on to PSC's end-session
    # endpoint: form-action must allow that origin (the sign-in itself is a plain link).
    CSP["form-action"] += " " + "/".join(PSC_ISSUER.split("/", 3)[:3])
