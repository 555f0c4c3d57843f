import type { Command } from 'commander';
import { LensError } from '../../core/errors.js';
import { integerFlag } from '../attribution-support.js';

interface RenderFlags {
  target: string;
  kserveProtocol?: string;
  concurrencyTarget?: string;
  modelName: string;
  modelBasePath?: string;
  pvc?: string;
  pvcSubpath?: string;
  pvcSize?: string;
  storageClass?: string;
  pvcAccessMode?: string;
  credentialsSecret?: string;
  s3Region?: string;
  s3Endpoint?: string;
  saAnnotation: string[];
  namespace?: string;
  gpus: string;
  gpuNodeSelector: string[];
  replicas?: string;
  maxReplicas?: string;
  targetCpu?: string;
  cpu?: string;
  memory?: string;
  servingImage?: string;
  servingVersion?: string;
  versionLabel: string[];
  enableBatching?: boolean;
  maxBatchSize?: string;
  batchTimeoutMicros?: string;
  maxEnqueuedBatches?: string;
  numBatchThreads?: string;
  allowedBatchSizes?: string;
  monitoring: boolean;
  monitoringNamespace?: string;
  clientNamespace: string[];
  ingressHost?: string;
  auth?: string;
  oidcIssuerUrl?: string;
  ingressClass?: string;
  tlsSecret?: string;
  emailDomain?: string;
  oauth2ProxySecret?: string;
  workbench?: boolean;
  workbenchImage?: string;
  workbenchGpus?: string;
  batchShards?: string;
  batchParallelism?: string;
  batchList?: string;
  batchOut?: string;
  batchModel?: string;
  batchImage?: string;
  batchArgs?: string;
  fromProfile?: string;
  latencySloMs: string;
  targetImagesPerSec?: string;
  out?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `lens k8s render` and `lens k8s validate`: manifests for TF Serving, the workbench and batch attribution. */
export function register(program: Command): void {
  const k8s = program.command('k8s').description('Kubernetes manifests: render a kustomization for TF Serving, the workbench and batch jobs; validate manifests offline');

  k8s
    .command('render')
    .description('render a ready kustomization (typed, schema-checked objects) into --out, or print it as YAML')
    .requiredOption('--model-name <name>', 'TF Serving model name (clients call /v1/models/NAME; with --target kserve the InferenceService is named after it, lower-cased, and TF Serving serves it under that name)')
    .option('--target <kind>', 'deployment (tensorflow/serving Deployment, Service, HPA) or kserve (a KServe InferenceService)', 'deployment')
    .option('--kserve-protocol <p>', 'with --target kserve: rest (v1, port 8080) or grpc (grpc-v1, h2c port 9000); Knative routes one of them', 'rest')
    .option('--concurrency-target <n>', 'with --target kserve: requests in flight per pod Knative scales at (default: from --from-profile, else 4)')
    .option('--model-base-path <path>', 'version folders of the model: a path under /models on the claim (default /models/NAME), gs://BUCKET/PATH or s3://BUCKET/PATH')
    .option('--pvc <claim>', 'existing PersistentVolumeClaim holding models/NAME/VERSION (e.g. JupyterHub\'s claim-USER); default: create serving-lens-shared')
    .option('--pvc-subpath <dir>', 'folder of the claim mounted at /models in the serving pods', 'models')
    .option('--pvc-size <quantity>', 'size of the claim created without --pvc', '20Gi')
    .option('--storage-class <name>', 'StorageClass of the created claim (one that offers ReadWriteMany: Filestore, EFS, Azure Files, NFS)')
    .option('--pvc-access-mode <mode>', 'ReadWriteMany (default) or ReadWriteOnce (single-node clusters such as kind)')
    .option('--credentials-secret <name>', 'existing Secret with bucket credentials (gs://: key.json; s3://: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); prefer workload identity')
    .option('--s3-region <region>', 'AWS region for s3:// models')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (MinIO, Ceph) for s3:// models')
    .option('--sa-annotation <key=value>', 'annotation of the serving ServiceAccount (GKE Workload Identity, EKS IRSA); repeatable', collect, [])
    .option('--namespace <ns>', 'namespace of every object')
    .option('--gpus <n>', 'GPUs per serving pod (0 = CPU image)', '0')
    .option('--gpu-node-selector <key=value>', 'node label GPU pods require (default nvidia.com/gpu.present=true); repeatable', collect, [])
    .option('--replicas <n>', 'minimum replicas (HorizontalPodAutoscaler)')
    .option('--max-replicas <n>', 'maximum replicas (HorizontalPodAutoscaler)')
    .option('--target-cpu <percent>', 'HPA target CPU utilisation', undefined)
    .option('--cpu <cores>', 'CPU cores per serving pod, requests = limits (default 2, or 4 with GPUs)')
    .option('--memory <quantity>', 'memory per serving pod, requests = limits (default 3Gi, or 8Gi with GPUs)')
    .option('--serving-image <image>', 'TF Serving image without tag', 'tensorflow/serving')
    .option('--serving-version <tag>', 'TF Serving version tag (-gpu is appended with --gpus)')
    .option('--version-label <label=version>', 'version label, e.g. stable=1; serves exactly the labelled versions; repeatable', collect, [])
    .option('--enable-batching', 'server-side batching (TF Serving --enable_batching)')
    .option('--max-batch-size <n>', 'batching: largest batch (pick the knee of `lens profile`\'s throughput curve)')
    .option('--batch-timeout-micros <n>', 'batching: longest wait for a batch to fill')
    .option('--max-enqueued-batches <n>', 'batching: queue length before UNAVAILABLE')
    .option('--num-batch-threads <n>', 'batching: threads running batches (default: CPU cores)')
    .option('--allowed-batch-sizes <list>', 'batching: padded sizes, e.g. 8,16,32 (last = --max-batch-size)')
    .option('--no-monitoring', 'no Prometheus metrics endpoint')
    .option('--monitoring-namespace <ns>', 'namespace of the Prometheus that scrapes the pods', 'monitoring')
    .option('--client-namespace <ns>', 'another namespace whose serving-lens/client=true pods may call TF Serving (e.g. JupyterHub\'s); repeatable', collect, [])
    .option('--ingress-host <host>', 'also expose the REST API at https://HOST behind authentication')
    .option('--auth <kind>', 'with --ingress-host: oauth2-proxy (any ingress controller) or iap (GKE Identity-Aware Proxy)', 'oauth2-proxy')
    .option('--oidc-issuer-url <url>', 'with --auth oauth2-proxy: the OIDC issuer (e.g. https://accounts.google.com)')
    .option('--ingress-class <name>', 'with --auth oauth2-proxy: the IngressClass', 'nginx')
    .option('--tls-secret <name>', 'TLS Secret for the host (default tf-serving-NAME-tls)')
    .option('--email-domain <domain>', 'with --auth oauth2-proxy: e-mail domain admitted (default *)')
    .option('--oauth2-proxy-secret <name>', 'with --auth oauth2-proxy: Secret holding client-id, client-secret, cookie-secret', 'oauth2-proxy')
    .option('--workbench', 'add the KubeFlow Notebook workbench (and write jupyterhub-values.yaml)')
    .option('--workbench-image <image>', 'workbench image built from k8s/workbench/Dockerfile')
    .option('--workbench-gpus <n>', 'GPUs for the workbench (image built with TFJS=gpu)')
    .option('--batch-shards <n>', 'add the batch attribution Indexed Job with N shards, and its merge Job')
    .option('--batch-parallelism <n>', 'shard pods running at once (default: all)')
    .option('--batch-list <path>', 'image list inside the pods', undefined)
    .option('--batch-out <dir>', 'output folder inside the pods', undefined)
    .option('--batch-model <model>', 'model for lens batch (default: the served model on the shared claim)')
    .option('--batch-image <image>', 'image with lens for the jobs (default: the workbench image)')
    .option('--batch-args <flags>', 'extra lens batch flags, e.g. "--steps 64 --baseline black"')
    .option('--from-profile <profile.json>', 'size batching and replicas from `lens profile` run against one serving pod')
    .option('--latency-slo-ms <ms>', 'with --from-profile: p99 latency to meet', '100')
    .option('--target-images-per-sec <n>', 'with --from-profile: expected peak load, sets min/max replicas')
    .option('--out <dir>', 'write the kustomization into DIR (otherwise print YAML)')
    .option('--json', 'print the objects as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  lens k8s render --model-name resnet --gpus 1 --pvc claim-alice --out deploy/resnet && kubectl apply -k deploy/resnet\n' +
        '  lens k8s render --model-name resnet --model-base-path gs://my-bucket/resnet --sa-annotation iam.gke.io/gcp-service-account=tf-serving@PROJECT.iam.gserviceaccount.com\n' +
        '  lens k8s render --model-name resnet --target kserve --model-base-path gs://my-bucket/resnet --gpus 1 --out deploy/resnet-kserve\n' +
        '  lens k8s render --model-name resnet --enable-batching --max-batch-size 32 --replicas 2 --max-replicas 8 --batch-shards 8 --workbench --out deploy/resnet',
    )
    .action(async (flags: RenderFlags) => {
      const { renderManifests, writeRendered, toYaml, DEFAULT_WORKBENCH_IMAGE } = await import('../../k8s/index.js');
      const int = (v: string | undefined, flag: string): number | undefined => (v === undefined ? undefined : integerFlag(v, flag));
      const pairs = (list: string[], flag: string): Record<string, string> =>
        Object.fromEntries(
          list.map((p) => {
            const i = p.indexOf('=');
            if (i <= 0) throw new LensError('INVALID_ARGUMENT', `${flag} takes key=value, got "${p}"`);
            return [p.slice(0, i), p.slice(i + 1)];
          }),
        );
      const accessMode = flags.pvcAccessMode;
      if (accessMode !== undefined && accessMode !== 'ReadWriteMany' && accessMode !== 'ReadWriteOnce') {
        throw new LensError('INVALID_ARGUMENT', `--pvc-access-mode must be ReadWriteMany or ReadWriteOnce, got "${accessMode}"`);
      }
      const cpu = flags.cpu === undefined ? undefined : Number(flags.cpu);
      let sizing: import('../../k8s/index.js').Sizing | undefined;
      if (flags.fromProfile) {
        const { readProfile, sizeFromProfile } = await import('../../k8s/index.js');
        sizing = sizeFromProfile(await readProfile(flags.fromProfile), {
          latencySloMs: Number(flags.latencySloMs),
          ...(flags.targetImagesPerSec !== undefined ? { targetImagesPerSec: Number(flags.targetImagesPerSec) } : {}),
        });
        process.stderr.write(`sizing from ${flags.fromProfile}: ${sizing.summary}\n`);
      }
      const workbenchImage = flags.workbenchImage ?? DEFAULT_WORKBENCH_IMAGE;
      const batching = flags.enableBatching || flags.maxBatchSize || flags.batchTimeoutMicros || flags.allowedBatchSizes;
      const batchingFlags: Record<string, number | number[] | undefined> = {
        maxBatchSize: int(flags.maxBatchSize, '--max-batch-size'),
        batchTimeoutMicros: int(flags.batchTimeoutMicros, '--batch-timeout-micros'),
        maxEnqueuedBatches: int(flags.maxEnqueuedBatches, '--max-enqueued-batches'),
        numBatchThreads: int(flags.numBatchThreads, '--num-batch-threads'),
        allowedBatchSizes: flags.allowedBatchSizes?.split(',').map((s) => int(s.trim(), '--allowed-batch-sizes')!),
      };
      const versionLabels = Object.fromEntries(Object.entries(pairs(flags.versionLabel, '--version-label')).map(([k, v]) => [k, int(v, `--version-label ${k}`)!]));
      const target = flags.target;
      if (target !== 'deployment' && target !== 'kserve') throw new LensError('INVALID_ARGUMENT', `--target must be deployment or kserve, got "${target}"`);
      const kserveFlags = flags.kserveProtocol !== 'rest' || flags.concurrencyTarget !== undefined;
      const rendered = await renderManifests({
        modelName: flags.modelName,
        target,
        ...(target === 'kserve' || kserveFlags
          ? {
              kserve: {
                protocol: flags.kserveProtocol as 'rest' | 'grpc',
                ...(flags.concurrencyTarget !== undefined ? { concurrencyTarget: int(flags.concurrencyTarget, '--concurrency-target')! } : {}),
              },
            }
          : {}),
        ...(flags.modelBasePath ? { modelBasePath: flags.modelBasePath } : {}),
        ...(flags.pvc ? { pvc: flags.pvc } : {}),
        ...(flags.pvcSubpath !== undefined ? { pvcSubPath: flags.pvcSubpath } : {}),
        ...(flags.pvcSize ? { pvcSize: flags.pvcSize } : {}),
        ...(flags.storageClass ? { storageClass: flags.storageClass } : {}),
        ...(accessMode ? { pvcAccessMode: accessMode } : {}),
        ...(flags.credentialsSecret ? { credentialsSecret: flags.credentialsSecret } : {}),
        ...(flags.s3Region ? { s3Region: flags.s3Region } : {}),
        ...(flags.s3Endpoint ? { s3Endpoint: flags.s3Endpoint } : {}),
        serviceAccountAnnotations: pairs(flags.saAnnotation, '--sa-annotation'),
        ...(flags.namespace ? { namespace: flags.namespace } : {}),
        gpus: int(flags.gpus, '--gpus')!,
        ...(flags.gpuNodeSelector.length > 0 ? { gpuNodeSelector: pairs(flags.gpuNodeSelector, '--gpu-node-selector') } : {}),
        ...(flags.replicas ? { replicas: int(flags.replicas, '--replicas')! } : {}),
        ...(flags.maxReplicas ? { maxReplicas: int(flags.maxReplicas, '--max-replicas')! } : {}),
        ...(flags.targetCpu ? { targetCpuUtilization: int(flags.targetCpu, '--target-cpu')! } : {}),
        ...(cpu !== undefined ? { cpu } : {}),
        ...(flags.memory ? { memory: flags.memory } : {}),
        ...(flags.servingImage ? { servingImage: flags.servingImage } : {}),
        ...(flags.servingVersion ? { servingVersion: flags.servingVersion } : {}),
        versionLabels,
        ...(sizing
          ? {
              sizing: {
                summary: sizing.summary,
                ...(sizing.batching ? { batching: sizing.batching } : {}),
                ...(sizing.minReplicas !== undefined ? { minReplicas: sizing.minReplicas, maxReplicas: sizing.maxReplicas! } : {}),
                concurrency: sizing.row.concurrency,
              },
            }
          : {}),
        ...(batching ? { batching: Object.fromEntries(Object.entries(batchingFlags).filter(([, v]) => v !== undefined)) } : {}),
        monitoring: flags.monitoring,
        ...(flags.monitoringNamespace ? { monitoringNamespace: flags.monitoringNamespace } : {}),
        clientNamespaces: flags.clientNamespace,
        ...(flags.ingressHost
          ? {
              ingress: {
                host: flags.ingressHost,
                auth: flags.auth as 'oauth2-proxy' | 'iap',
                ...(flags.oidcIssuerUrl ? { oidcIssuerUrl: flags.oidcIssuerUrl } : {}),
                ...(flags.ingressClass ? { className: flags.ingressClass } : {}),
                ...(flags.tlsSecret ? { tlsSecret: flags.tlsSecret } : {}),
                ...(flags.emailDomain ? { emailDomain: flags.emailDomain } : {}),
                ...(flags.oauth2ProxySecret ? { oauth2ProxySecret: flags.oauth2ProxySecret } : {}),
              },
            }
          : {}),
        ...(flags.workbench || flags.workbenchImage || flags.workbenchGpus
          ? { workbench: { image: workbenchImage, ...(flags.workbenchGpus ? { gpus: int(flags.workbenchGpus, '--workbench-gpus')! } : {}) } }
          : {}),
        ...(flags.batchShards
          ? {
              batch: {
                image: flags.batchImage ?? workbenchImage,
                shards: int(flags.batchShards, '--batch-shards')!,
                ...(flags.batchParallelism ? { parallelism: int(flags.batchParallelism, '--batch-parallelism')! } : {}),
                ...(flags.batchList ? { list: flags.batchList } : {}),
                ...(flags.batchOut ? { out: flags.batchOut } : {}),
                ...(flags.batchModel ? { model: flags.batchModel } : {}),
                ...(flags.batchArgs ? { extraArgs: flags.batchArgs.split(/\s+/).filter(Boolean) } : {}),
              },
            }
          : {}),
      });
      if (flags.out) {
        const written = await writeRendered(flags.out, rendered.files);
        if (flags.json) process.stdout.write(`${JSON.stringify({ out: flags.out, files: written, objects: rendered.objects }, null, 2)}\n`);
        else process.stdout.write(`wrote ${written.length} files to ${flags.out}\napply with: kubectl apply -k ${flags.out}\n`);
        if (!flags.json && rendered.resolved.target === 'kserve') {
          const name = rendered.resolved.slug;
          process.stdout.write(
            `TF Serving serves the model as "${name}": find the host with kubectl get inferenceservice ${name}${rendered.resolved.namespace ? ` -n ${rendered.resolved.namespace}` : ''}, then\n` +
              `  lens predict --server INGRESS:80 --host-header HOST --model ${name}${rendered.resolved.kserve!.protocol === 'rest' ? ' --transport rest' : ''} IMAGE\n`,
          );
        }
      } else if (flags.json) process.stdout.write(`${JSON.stringify(rendered.objects, null, 2)}\n`);
      else process.stdout.write(toYaml(rendered.objects));
    });

  k8s
    .command('validate')
    .description('check manifests offline: YAML files, folders of them, or kustomizations (built in-process) against the Kubernetes schemas and the security rules')
    .argument('<paths...>', 'YAML files, folders, or folders with a kustomization.yaml')
    .option('--json', 'print the findings as JSON')
    .addHelpText('after', '\nExample:\n  lens k8s validate k8s/overlays/gpu deploy/resnet\nExits 1 when an object fails its schema or breaks a security rule (warnings do not fail).')
    .action(async (paths: string[], flags: { json?: boolean }) => {
      const { validateTargets } = await import('../../k8s/check.js');
      const results = await validateTargets(paths);
      if (flags.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      else {
        for (const r of results) {
          process.stdout.write(`${r.path}: ${r.objects} objects${r.kustomization ? ' (kustomization)' : ''}\n`);
          for (const e of r.schemaErrors) process.stdout.write(`  error: ${e}\n`);
          for (const f of r.findings) process.stdout.write(`  ${f.severity}: ${f.object}: ${f.message} [${f.rule}]\n`);
          for (const s of r.skipped) process.stdout.write(`  skipped ${s} (not a Kubernetes manifest)\n`);
        }
      }
      const failed = results.filter((r) => r.schemaErrors.length > 0 || r.findings.some((f) => f.severity === 'error'));
      if (failed.length > 0) throw new LensError('INVALID_ARGUMENT', `${failed.length} of ${results.length} targets failed: ${failed.map((r) => r.path).join(', ')}`);
    });
}
