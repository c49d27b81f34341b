// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Transfers
/// @notice A stand-in for the Coinbase Commerce Onchain Payment Protocol's
/// Transfers contract, for the development chain: the same TransferIntent
/// struct, the same function selectors (transferNative,
/// transferTokenPreApproved), the same operator signature over the intent
/// (bound to the chain, the payer and this contract) and the same
/// Transferred event, without Permit2, swaps or the operator registry. It
/// lets the top-up tests pay a provider's charge end to end.
contract Transfers {
    struct TransferIntent {
        uint256 recipientAmount;
        uint256 deadline;
        address payable recipient;
        address recipientCurrency;
        address refundDestination;
        uint256 feeAmount;
        bytes16 id;
        address operator;
        bytes signature;
        bytes prefix;
    }

    event Transferred(
        address indexed operator,
        bytes16 id,
        address recipient,
        address sender,
        uint256 spentAmount,
        address spentCurrency
    );

    error InvalidSignature();
    error InvalidNativeAmount(int256 difference);
    error IncorrectCurrency(address attemptedCurrency);
    error ExpiredIntent();
    error NullRecipient();
    error AlreadyProcessed();
    error TransferFailed();

    /// processed marks an intent (by operator and id) as paid: an intent
    /// pays once, whoever sends it again.
    mapping(address => mapping(bytes16 => bool)) public processed;

    function transferNative(TransferIntent calldata _intent) external payable {
        _check(_intent);
        if (_intent.recipientCurrency != address(0)) revert IncorrectCurrency(address(0));
        uint256 needed = _intent.recipientAmount + _intent.feeAmount;
        if (msg.value != needed) revert InvalidNativeAmount(int256(msg.value) - int256(needed));
        processed[_intent.operator][_intent.id] = true;
        _send(_intent.recipient, _intent.recipientAmount);
        if (_intent.feeAmount > 0) _send(payable(_intent.operator), _intent.feeAmount);
        emit Transferred(_intent.operator, _intent.id, _intent.recipient, msg.sender, msg.value, address(0));
    }

    function transferTokenPreApproved(TransferIntent calldata _intent) external {
        _check(_intent);
        if (_intent.recipientCurrency == address(0)) revert IncorrectCurrency(address(0));
        processed[_intent.operator][_intent.id] = true;
        ITransfersERC20 token = ITransfersERC20(_intent.recipientCurrency);
        if (!token.transferFrom(msg.sender, _intent.recipient, _intent.recipientAmount)) revert TransferFailed();
        if (_intent.feeAmount > 0 && !token.transferFrom(msg.sender, _intent.operator, _intent.feeAmount)) revert TransferFailed();
        emit Transferred(
            _intent.operator,
            _intent.id,
            _intent.recipient,
            msg.sender,
            _intent.recipientAmount + _intent.feeAmount,
            _intent.recipientCurrency
        );
    }

    /// _check verifies what the real contract verifies before moving funds:
    /// the deadline, a recipient, that the intent was not paid already, and
    /// the operator's signature over every field, the chain, the payer and
    /// this contract (so an intent made for one payer cannot be paid by
    /// another, nor replayed on another chain or contract).
    function _check(TransferIntent calldata _intent) internal view {
        if (block.timestamp > _intent.deadline) revert ExpiredIntent();
        if (_intent.recipient == address(0)) revert NullRecipient();
        if (processed[_intent.operator][_intent.id]) revert AlreadyProcessed();
        bytes32 hash = keccak256(
            abi.encodePacked(
                _intent.recipientAmount,
                _intent.deadline,
                _intent.recipient,
                _intent.recipientCurrency,
                _intent.refundDestination,
                _intent.feeAmount,
                _intent.id,
                _intent.operator,
                block.chainid,
                msg.sender,
                address(this)
            )
        );
        bytes32 signed = _intent.prefix.length == 0
            ? keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", hash))
            : keccak256(abi.encodePacked(_intent.prefix, hash));
        if (_recover(signed, _intent.signature) != _intent.operator || _intent.operator == address(0)) revert InvalidSignature();
    }

    function _recover(bytes32 digest, bytes calldata sig) internal pure returns (address) {
        if (sig.length != 65) return address(0);
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (v < 27) v += 27;
        // Low-S only, as OpenZeppelin's ECDSA: a malleated twin is refused.
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) return address(0);
        return ecrecover(digest, v, r, s);
    }

    function _send(address payable to, uint256 amount) internal {
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}

interface ITransfersERC20 {
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}
