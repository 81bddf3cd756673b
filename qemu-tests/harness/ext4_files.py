"""The files a root-boot scenario wrote, read back on the host from an ext4 image of a leg."""
import hashlib
import subprocess
import tempfile


def files_in_image(workdir, image, names):
    """md5 of each /data/<name> in the ext4 file system `image` (bytes), read by debugfs (None:
    not found). The journal is replayed first (on a copy), as a mount would: after a power cut
    fsynced files may be in the journal only."""
    with tempfile.NamedTemporaryFile(dir=workdir, suffix=".ext4") as img:
        img.write(image)
        img.flush()
        subprocess.run(["e2fsck", "-y", "-E", "journal_only", img.name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = {}
        for n in names:
            p = subprocess.run(["debugfs", "-R", "cat /data/%s" % n, img.name],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ok = p.returncode == 0 and b"File not found" not in p.stderr
            out[n] = hashlib.md5(p.stdout).hexdigest() if ok and p.stdout else None
        return out


def written_files(res):
    """{name: md5} of the files a boot wrote (the guest's root_write_files)."""
    return {k[len("file_"):]: v[-1] for k, v in res.results.items() if k.startswith("file_")}
