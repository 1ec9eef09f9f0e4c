"""Sealed second factors, personal address changes by confirmed link, login slow-down.

The data step moves the devices of django-otp's plugin apps (otp_totp, otp_static,
otp_email, no longer installed) into the sealed devices of accounts, then empties
their tables, which held TOTP keys and backup codes in clear. It reads those tables
with SQL when they exist (an older database) and does nothing on a new one.

It repeats, on purpose, two rules of accounts.models rather than import app code:
the associated data of a sealed secret, ``accounts/<kind>/<user id>``, and the form
a backup code is hashed in (lower-case letters and digits only). A test migrates
plaintext devices and logs in with their codes, so a drift fails the suite.
"""

import datetime
import hashlib
import hmac
import os

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


OLD_TABLES = {
    "totp": "otp_totp_totpdevice",
    "static": "otp_static_staticdevice",
    "static_tokens": "otp_static_statictoken",
    "email": "otp_email_emaildevice",
}


def _seal(ring, secret, kind, user_id):
    from mssante.lib import crypto

    sealed = crypto.seal(ring, secret, f"accounts/{kind}/{user_id}".encode())
    return {
        "key_id": sealed.key_id,
        "wrapped_key": sealed.wrapped_key,
        "sealed_secret": sealed.ciphertext,
    }


def _rows(cursor, connection, table, wanted):
    present = {col.name for col in connection.introspection.get_table_description(cursor, table)}
    columns = [c for c in wanted if c in present]
    cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id")  # noqa: S608
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _aware(value):
    # SQLite hands back naive datetimes, stored in UTC by Django; PostgreSQL aware ones.
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def _keep_dates(model, device, row):
    dates = {k: _aware(row[k]) for k in ("created_at", "last_used_at") if row.get(k) is not None}
    if dates:
        model.objects.filter(pk=device.pk).update(**dates)


def seal_plugin_devices(apps, schema_editor):
    from mssante.lib import crypto

    connection = schema_editor.connection
    tables = set(connection.introspection.table_names())
    if not tables & set(OLD_TABLES.values()):
        return
    ring = crypto.KeyRing.from_spec(settings.MSSANTE_MASTER_KEYS)
    TOTPDevice = apps.get_model("accounts", "TOTPDevice")
    BackupCodeDevice = apps.get_model("accounts", "BackupCodeDevice")
    BackupCode = apps.get_model("accounts", "BackupCode")
    EmailCodeDevice = apps.get_model("accounts", "EmailCodeDevice")
    dated = ["created_at", "last_used_at"]
    with connection.cursor() as cursor:
        if OLD_TABLES["totp"] in tables:
            fields = ["id", "user_id", "name", "confirmed", "key", "step", "t0", "digits"]
            fields += ["tolerance", "drift", "last_t", *dated]
            for row in _rows(cursor, connection, OLD_TABLES["totp"], fields):
                device = TOTPDevice.objects.create(
                    user_id=row["user_id"],
                    name=row["name"],
                    confirmed=row["confirmed"],
                    step=row["step"],
                    t0=row["t0"],
                    digits=row["digits"],
                    tolerance=row["tolerance"],
                    drift=row["drift"],
                    last_t=row["last_t"],
                    **_seal(ring, bytes.fromhex(row["key"]), "totp", row["user_id"]),
                )
                _keep_dates(TOTPDevice, device, row)
            cursor.execute(f"DELETE FROM {OLD_TABLES['totp']}")  # noqa: S608
        if OLD_TABLES["static"] in tables:
            fields = ["id", "user_id", "name", "confirmed", *dated]
            for row in _rows(cursor, connection, OLD_TABLES["static"], fields):
                mac_key = os.urandom(32)
                device = BackupCodeDevice.objects.create(
                    user_id=row["user_id"],
                    name=row["name"],
                    confirmed=row["confirmed"],
                    **_seal(ring, mac_key, "backup", row["user_id"]),
                )
                _keep_dates(BackupCodeDevice, device, row)
                cursor.execute(
                    f"SELECT token FROM {OLD_TABLES['static_tokens']} WHERE device_id = %s",  # noqa: S608
                    [row["id"]],
                )
                codes = []
                for (token,) in cursor.fetchall():
                    plain = "".join(ch for ch in str(token).lower() if ch.isalnum())
                    digest = hmac.new(mac_key, plain.encode(), hashlib.sha256).hexdigest()
                    codes.append(BackupCode(device=device, code_hash=digest))
                BackupCode.objects.bulk_create(codes)
            cursor.execute(f"DELETE FROM {OLD_TABLES['static_tokens']}")  # noqa: S608
            cursor.execute(f"DELETE FROM {OLD_TABLES['static']}")  # noqa: S608
        if OLD_TABLES["email"] in tables:
            fields = ["id", "user_id", "name", "confirmed", *dated]
            for row in _rows(cursor, connection, OLD_TABLES["email"], fields):
                # The device's own address (staff could set one in the old admin) is
                # dropped: codes go to the account's personal address, changed by link.
                device = EmailCodeDevice.objects.create(
                    user_id=row["user_id"],
                    name=row["name"],
                    confirmed=row["confirmed"],
                    **_seal(ring, os.urandom(32), "email", row["user_id"]),
                )
                _keep_dates(EmailCodeDevice, device, row)
            cursor.execute(f"DELETE FROM {OLD_TABLES['email']}")  # noqa: S608


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='LoginThrottle',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=160, unique=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('next_allowed_at', models.DateTimeField(blank=True, null=True)),
                ('notified_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name': 'ralentissement de connexion',
                'verbose_name_plural': 'ralentissements de connexion',
            },
        ),
        migrations.CreateModel(
            name='BackupCodeDevice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='The human-readable name of this device.', max_length=64)),
                ('confirmed', models.BooleanField(default=True, help_text='Is this device ready for use?')),
                ('created_at', models.DateTimeField(auto_now_add=True, help_text='The date and time when this device was initially created in the system.', null=True)),
                ('last_used_at', models.DateTimeField(blank=True, help_text='The most recent date and time this device was used.', null=True)),
                ('key_id', models.CharField(editable=False, max_length=64)),
                ('wrapped_key', models.BinaryField()),
                ('sealed_secret', models.BinaryField()),
                ('user', models.ForeignKey(help_text='The user that this device belongs to.', on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'codes de secours',
                'verbose_name_plural': 'codes de secours',
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='BackupCode',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code_hash', models.CharField(max_length=64)),
                ('device', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='codes', to='accounts.backupcodedevice')),
            ],
            options={
                'verbose_name': 'code de secours',
                'verbose_name_plural': 'codes de secours',
            },
        ),
        migrations.CreateModel(
            name='EmailChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('old_email', models.EmailField(blank=True, max_length=254, verbose_name='ancienne adresse')),
                ('new_email', models.EmailField(max_length=254, verbose_name='nouvelle adresse')),
                ('token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('expires_at', models.DateTimeField()),
                ('used_at', models.DateTimeField(blank=True, null=True)),
                ('cancelled_at', models.DateTimeField(blank=True, null=True)),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='email_changes', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': "changement d'adresse personnelle",
                'verbose_name_plural': "changements d'adresse personnelle",
            },
        ),
        migrations.CreateModel(
            name='EmailCodeDevice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='The human-readable name of this device.', max_length=64)),
                ('confirmed', models.BooleanField(default=True, help_text='Is this device ready for use?')),
                ('last_generated_timestamp', models.DateTimeField(blank=True, help_text='The last time a token was generated for this device.', null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True, help_text='The date and time when this device was initially created in the system.', null=True)),
                ('last_used_at', models.DateTimeField(blank=True, help_text='The most recent date and time this device was used.', null=True)),
                ('key_id', models.CharField(editable=False, max_length=64)),
                ('wrapped_key', models.BinaryField()),
                ('sealed_secret', models.BinaryField()),
                ('token_hash', models.CharField(blank=True, editable=False, max_length=64)),
                ('valid_until', models.DateTimeField(blank=True, editable=False, null=True)),
                ('user', models.ForeignKey(help_text='The user that this device belongs to.', on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'codes par e-mail',
                'verbose_name_plural': 'codes par e-mail',
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='TOTPDevice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='The human-readable name of this device.', max_length=64)),
                ('confirmed', models.BooleanField(default=True, help_text='Is this device ready for use?')),
                ('created_at', models.DateTimeField(auto_now_add=True, help_text='The date and time when this device was initially created in the system.', null=True)),
                ('last_used_at', models.DateTimeField(blank=True, help_text='The most recent date and time this device was used.', null=True)),
                ('key_id', models.CharField(editable=False, max_length=64)),
                ('wrapped_key', models.BinaryField()),
                ('sealed_secret', models.BinaryField()),
                ('step', models.PositiveSmallIntegerField(default=30)),
                ('t0', models.BigIntegerField(default=0)),
                ('digits', models.PositiveSmallIntegerField(default=6)),
                ('tolerance', models.PositiveSmallIntegerField(default=1)),
                ('drift', models.SmallIntegerField(default=0)),
                ('last_t', models.BigIntegerField(default=-1)),
                ('user', models.ForeignKey(help_text='The user that this device belongs to.', on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': "application d'authentification",
                'verbose_name_plural': "applications d'authentification",
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='KnownAddress',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('address_hash', models.CharField(max_length=64)),
                ('last_login_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='known_addresses', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'adresse réseau connue',
                'verbose_name_plural': 'adresses réseau connues',
                'constraints': [models.UniqueConstraint(fields=('user', 'address_hash'), name='unique_known_address')],
            },
        ),
        migrations.RunPython(seal_plugin_devices, migrations.RunPython.noop),
    ]
