# The trust-space rules' tables, taken over from charter (charter/migrations/0009) as they
# are: state only, the tables keep their charter_* names (db_table), their rows, indexes,
# constraints and grants. The content types follow, so staff permissions and the admin's
# history name the models in their new app.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("listeddomain", "operatorcertificate", "listeblancheimport", "recipientlimitexception")


def _relabel(apps, schema_editor, old, new):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        if not types.filter(app_label=new, model=model).exists():
            types.filter(app_label=old, model=model).update(app_label=new)


def content_types_to_trust(apps, schema_editor):
    _relabel(apps, schema_editor, "charter", "trust")


def content_types_to_charter(apps, schema_editor):
    _relabel(apps, schema_editor, "trust", "charter")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("charter", "0010_trust_rules_leave_for_trust"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("mailboxes", "0006_inbound_resend_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ListedDomain',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=253, unique=True, verbose_name='domaine')),
                        ('description', models.CharField(blank=True, max_length=500, verbose_name='description')),
                        ('responsible_contact', models.CharField(blank=True, max_length=500, verbose_name='contact responsable')),
                        ('support_contact', models.CharField(blank=True, max_length=500, verbose_name='contact support')),
                        ('updated_at', models.DateTimeField(blank=True, null=True, verbose_name='mise à jour (liste blanche)')),
                    ],
                    options={
                        'verbose_name': 'domaine de la liste blanche',
                        'verbose_name_plural': 'liste blanche',
                        'db_table': 'charter_listeddomain',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ListeBlancheImport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('started_at', models.DateTimeField(verbose_name='début')),
                        ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='fin')),
                        ('source', models.CharField(max_length=1000, verbose_name='source')),
                        ('generated_at', models.DateTimeField(blank=True, null=True, verbose_name='date de génération du fichier')),
                        ('result', models.CharField(choices=[('imported', 'importée'), ('warnings', 'importée avec avertissements'), ('refused', 'refusée (liste actuelle conservée)')], max_length=16, verbose_name='résultat')),
                        ('forced', models.BooleanField(default=False, verbose_name='forcée')),
                        ('entries', models.PositiveIntegerField(default=0, verbose_name='entrées lues')),
                        ('domains', models.PositiveIntegerField(default=0, verbose_name='domaines')),
                        ('certificates', models.PositiveIntegerField(default=0, verbose_name='certificats')),
                        ('added', models.PositiveIntegerField(default=0, verbose_name='domaines ajoutés')),
                        ('removed', models.PositiveIntegerField(default=0, verbose_name='domaines retirés')),
                        ('messages', models.TextField(blank=True, verbose_name='avertissements ou motif du refus')),
                        ('by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='lancée par')),
                    ],
                    options={
                        'verbose_name': 'import de la liste blanche',
                        'verbose_name_plural': 'imports de la liste blanche',
                        'db_table': 'charter_listeblancheimport',
                        'ordering': ['-started_at'],
                    },
                ),
                migrations.CreateModel(
                    name='OperatorCertificate',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('dn', models.CharField(max_length=1000, verbose_name="DN du certificat de l'opérateur")),
                        ('updated_at', models.DateTimeField(blank=True, null=True, verbose_name='mise à jour (liste blanche)')),
                        ('domain', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='certificates', to='trust.listeddomain', verbose_name='domaine')),
                    ],
                    options={
                        'verbose_name': "certificat d'opérateur",
                        'verbose_name_plural': "certificats d'opérateur",
                        'db_table': 'charter_operatorcertificate',
                        'indexes': [models.Index(fields=['dn'], name='charter_certificate_dn')],
                        'constraints': [models.UniqueConstraint(fields=('domain', 'dn'), name='charter_unique_domain_dn')],
                    },
                ),
                migrations.CreateModel(
                    name='RecipientLimitException',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('reason', models.TextField(verbose_name='motif')),
                        ('valid_until', models.DateTimeField(verbose_name="valable jusqu'au")),
                        ('granted_at', models.DateTimeField(verbose_name='accordée le')),
                        ('revoked_at', models.DateTimeField(blank=True, null=True, verbose_name='révoquée le')),
                        ('granted_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='accordée par')),
                        ('mailbox', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='recipient_limit_exceptions', to='mailboxes.mailbox', verbose_name='boîte')),
                        ('revoked_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='révoquée par')),
                    ],
                    options={
                        'verbose_name': 'dérogation au nombre de destinataires',
                        'verbose_name_plural': 'dérogations au nombre de destinataires',
                        'db_table': 'charter_recipientlimitexception',
                        'ordering': ['-granted_at'],
                        'indexes': [models.Index(fields=['mailbox', 'valid_until'], name='charter_rcpt_exc_active')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_trust, content_types_to_charter),
    ]
