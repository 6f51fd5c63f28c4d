"""Content service settings (env prefix HEARTH_CONTENT_, falling back to HEARTH_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class ContentSettings(ServiceSettings):
    """Settings of the content service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_CONTENT_", extra="ignore")

    service_name: str = "content"
    # How often the scheduled publisher looks for due calendar slots (a post goes out at most
    # this much after its publish_at).
    publish_tick_seconds: float = Field(default=5.0, gt=0, le=300)
    # Attachments: local disk under this folder unless an S3 bucket is configured.
    data_dir: str = "data/content"
    attachments_dir: str | None = None  # default: <data_dir>/attachments
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None  # MinIO, Ceph, moto…; None: AWS itself
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None  # None: boto3's chain (IRSA, instance role, env)
    s3_secret_access_key: str | None = None
    s3_prefix: str = "attachments/"
    # How often buffered post views are written (hearth_content.ranking): at most this much of
    # views is lost if a replica dies hard (a clean stop writes them).
    views_flush_seconds: float = Field(default=10.0, gt=0, le=300)
