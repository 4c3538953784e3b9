"""The composition root: every service of a ConvLens process, built once from its settings.

``Services.from_settings(settings)`` builds the zoo, the artifact and dataset stores, the feature
cache, each technique's service and the job manager, wiring each dependency to the one instance
here. The API app (one per app), the CLI (one per command) and a Celery worker (one per process,
built at start) get their services from it, and in-process jobs run with their API's. Nothing else
constructs a service and no module keeps one in a global, so two apps with different data
directories share nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.artifacts import ArtifactStore
from server.attributions import AttributionService
from server.audits import AuditService
from server.cache_budget import CacheBudget
from server.checkpoints import CheckpointService
from server.compare import CompareService
from server.config import Settings
from server.datasets.store import DatasetStore
from server.deepvis import DeepVisService
from server.engine.compiled import Compiler
from server.explore import ExploreService
from server.features_cache import FeatureCache
from server.gan import GanService
from server.jobs import JobManager, MemoryJobStore, ThreadRunner
from server.jobs_redis import CeleryRunner, RedisJobStore, make_celery
from server.microscope import MicroscopeService
from server.projections import ProjectionService
from server.recurrent import RecurrentService
from server.tasks import TASKS
from server.top_images import TopImagesService
from server.weight_pulls import WeightPullService
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager


@dataclass(eq=False)
class Services:
    """One process's services over one data directory (see :meth:`from_settings`)."""

    settings: Settings
    zoo: ZooManager
    artifacts: ArtifactStore
    datasets: DatasetStore
    features: FeatureCache
    explore: ExploreService
    attributions: AttributionService
    projections: ProjectionService
    audits: AuditService
    checkpoints: CheckpointService
    compare: CompareService
    deepvis: DeepVisService
    top_images: TopImagesService
    gan: GanService
    recurrent: RecurrentService
    microscope: MicroscopeService
    weight_pulls: WeightPullService
    jobs: JobManager = field(init=False, repr=False)  # built last: its runner runs jobs with these services
    _by_data_dir: dict[str, Services] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, zoo: ZooManager | None = None, jobs: JobManager | None = None
    ) -> Services:
        """Every service, each built once. ``zoo`` shares loaded models with other Services (a worker's
        services for another data directory, the tests' session zoo); ``jobs`` replaces the job manager
        the settings call for."""
        ensure_registered()
        zoo = zoo or ZooManager(settings.device, settings.model_memory_bytes)
        budget = CacheBudget(settings.cache_dir, settings.cache_max_bytes)  # every recomputable file
        artifacts = ArtifactStore(settings.cache_dir / "artifacts", budget)
        datasets = DatasetStore.from_settings(settings, budget)
        compiler = Compiler(settings.compile, settings.compile_cache_dir, min_hits=settings.compile_after)
        features = FeatureCache(datasets, budget=budget, compiler=compiler)
        explore = ExploreService(settings, artifacts, compiler)
        checkpoints = CheckpointService(settings.models_dir, zoo)
        top_images = TopImagesService(zoo, datasets, artifacts, features)
        deepvis = DeepVisService(zoo, artifacts, settings.deepvis_second_opinion)
        audits = AuditService(zoo, datasets, artifacts)
        services = cls(
            settings=settings,
            zoo=zoo,
            artifacts=artifacts,
            datasets=datasets,
            features=features,
            explore=explore,
            attributions=AttributionService(settings, artifacts),
            projections=ProjectionService(datasets, zoo, features),
            audits=audits,
            checkpoints=checkpoints,
            compare=CompareService(explore, checkpoints, features, datasets, settings.cka_max_images),
            deepvis=deepvis,
            top_images=top_images,
            gan=GanService(settings, zoo, artifacts),
            recurrent=RecurrentService(zoo, datasets, artifacts),
            microscope=MicroscopeService(zoo, datasets, artifacts, top_images, deepvis, audits, explore),
            weight_pulls=WeightPullService(settings, zoo),
        )
        services.jobs = jobs or build_job_manager(settings, services)
        return services

    def for_job(self, params: dict[str, Any]) -> Services:
        """The services for a job's data directory (``params['data_dir']``, set by the API that submitted
        it): these when it is theirs or unset; otherwise - a worker serving an API with another data
        directory - services for that directory, built once and sharing this zoo and job manager."""
        data_dir = params.get("data_dir")
        if not data_dir or Path(data_dir) == self.settings.data_dir:
            return self
        with self._lock:
            if data_dir not in self._by_data_dir:
                settings = self.settings.model_copy(update={"data_dir": Path(data_dir)})
                self._by_data_dir[data_dir] = Services.from_settings(settings, zoo=self.zoo, jobs=self.jobs)
            return self._by_data_dir[data_dir]

    def shutdown(self) -> None:
        self.jobs.shutdown()
        self.explore.compiler.close()


def build_job_manager(settings: Settings, services: Services) -> JobManager:
    """In-process threads running ``services``' tasks by default; with ``job_backend=celery``, jobs held
    in Redis for Celery workers (which build their own services)."""
    if settings.job_backend == "celery":
        store = RedisJobStore.from_url(settings.redis_url, ttl=settings.job_ttl_seconds)
        return JobManager(
            store, CeleryRunner(make_celery(settings)), TASKS, settings.data_dir, services.artifacts.alive
        )
    return JobManager(
        MemoryJobStore(),
        ThreadRunner(TASKS, services, settings.job_workers),
        TASKS,
        settings.data_dir,
        services.artifacts.alive,
    )
