#!/usr/bin/python3
"""A tiny crictl: drives a CRI server (containerd's CRI plugin) the way kubelet does, for
the tests of the Kubernetes path (a RuntimeClass handler names a containerd runtime whose
BinaryName is the OCI runtime under test). Debian 12 ships no crictl.

    crictl.py SOCKET version
    crictl.py SOCKET runp NAME HANDLER LOGDIR         -> pod sandbox id (host network)
    crictl.py SOCKET create POD NAME IMAGE LOGDIR CMD... -> container id
    crictl.py SOCKET start|rm CONTAINER
    crictl.py SOCKET stop CONTAINER TIMEOUT
    crictl.py SOCKET inspect CONTAINER                  -> "STATE EXIT_CODE REASON"
    crictl.py SOCKET exec CONTAINER CMD...              -> its stdout; exits with its code
    crictl.py SOCKET stopp|rmp POD

Needs python3-grpcio and the classes protoc generates from cri.proto (CRI_PB2_DIR, or
beside this file). Errors print the gRPC status and exit 1.
"""
import os
import sys

sys.path.insert(0, os.environ.get("CRI_PB2_DIR", os.path.dirname(os.path.abspath(__file__))))

import grpc  # noqa: E402

import cri_pb2 as pb  # noqa: E402

STATES = {0: "CREATED", 1: "RUNNING", 2: "EXITED", 3: "UNKNOWN"}


def call(channel, method, request, response):
    stub = channel.unary_unary(
        "/runtime.v1.RuntimeService/" + method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )
    return stub(request, timeout=120)


def sandbox_config(name, logdir):
    # host network: no CNI needed; the pod's pid namespace is its own.
    ns = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="liana-test"),
        log_directory=logdir,
        labels={"liana-test": "1"},
        linux=pb.LinuxPodSandboxConfig(
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)
        ),
    )


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    channel = grpc.insecure_channel("unix://" + argv[0])
    verb, args = argv[1], argv[2:]
    if verb == "version":
        r = call(channel, "Version", pb.VersionRequest(version="v1"), pb.VersionResponse)
        print(r.runtime_name, r.runtime_version, r.runtime_api_version)
    elif verb == "runp":
        name, handler, logdir = args
        r = call(
            channel,
            "RunPodSandbox",
            pb.RunPodSandboxRequest(config=sandbox_config(name, logdir), runtime_handler=handler),
            pb.RunPodSandboxResponse,
        )
        print(r.pod_sandbox_id)
    elif verb == "create":
        pod, name, image, logdir = args[:4]
        # The pod's name is the container's, as the tests use one container per pod.
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name),
            image=pb.ImageSpec(image=image),
            command=args[4:],
            log_path=name + ".log",
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(
                    namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER)
                )
            ),
        )
        r = call(
            channel,
            "CreateContainer",
            pb.CreateContainerRequest(
                pod_sandbox_id=pod, config=config, sandbox_config=sandbox_config(name, logdir)
            ),
            pb.CreateContainerResponse,
        )
        print(r.container_id)
    elif verb == "start":
        call(channel, "StartContainer", pb.StartContainerRequest(container_id=args[0]),
             pb.StartContainerResponse)
    elif verb == "stop":
        call(channel, "StopContainer",
             pb.StopContainerRequest(container_id=args[0], timeout=int(args[1])),
             pb.StopContainerResponse)
    elif verb == "rm":
        call(channel, "RemoveContainer", pb.RemoveContainerRequest(container_id=args[0]),
             pb.RemoveContainerResponse)
    elif verb == "inspect":
        r = call(channel, "ContainerStatus", pb.ContainerStatusRequest(container_id=args[0]),
                 pb.ContainerStatusResponse)
        print(STATES.get(r.status.state, r.status.state), r.status.exit_code,
              r.status.reason or "-")
    elif verb == "exec":
        r = call(channel, "ExecSync",
                 pb.ExecSyncRequest(container_id=args[0], cmd=args[1:], timeout=60),
                 pb.ExecSyncResponse)
        sys.stdout.buffer.write(r.stdout)
        sys.stderr.buffer.write(r.stderr)
        return r.exit_code
    elif verb == "stopp":
        call(channel, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=args[0]),
             pb.StopPodSandboxResponse)
    elif verb == "rmp":
        call(channel, "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=args[0]),
             pb.RemovePodSandboxResponse)
    else:
        print("unknown verb " + verb, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except grpc.RpcError as e:
        print("crictl.py: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        sys.exit(1)
